package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"

	"github.com/cmmv-hive/resilience/config"
)

// jetStreamTimeout bounds the wait for a started cluster's JetStream.
const jetStreamTimeout = 30 * time.Second

// startDeployment starts what the scenario needs under o.Out: one hive
// node with its embedded NATS server, or nats-server processes clustered
// on loopback and one hive node joined to each.
func (r *runner) startDeployment(ctx context.Context) error {
	hiveNode, err := findBinary(r.o.HiveNode, "hive-node", "--hive-node", "build")
	if err != nil {
		return err
	}
	if r.o.Out == "" {
		return fmt.Errorf("no output directory for the nodes (Options.Out)")
	}
	if r.sc.Nodes > 1 {
		if err := r.startServers(ctx, r.sc.Nodes); err != nil {
			return err
		}
	}
	for i := 1; i <= r.sc.Nodes; i++ {
		name := NodeName(i)
		dir, err := filepath.Abs(filepath.Join(r.o.Out, "nodes", name))
		if err != nil {
			return err
		}
		if err := r.writeConfig(filepath.Join(dir, "config")); err != nil {
			return err
		}
		args := []string{"serve", "--config-dir", filepath.Join(dir, "config"), "--node-id", name,
			"--http-addr", "off", "--data-dir", filepath.Join(dir, "data"),
			"--log-level", "info", "--log-format", "json", "--shutdown-grace", "3s"}
		if r.sc.Nodes == 1 {
			args = append(args, "--nats-listen", "127.0.0.1:-1")
		} else {
			args = append(args, "--nats-url", r.urls[i-1])
		}
		p := &proc{name: "hive node " + name, node: name, path: hiveNode, args: args, logPath: filepath.Join(dir, "hive-node.log"),
			ready: nodeReady, exited: r.exited, wg: &r.wg}
		r.nodes[name] = p
		r.nodeOrder = append(r.nodeOrder, name)
		url, err := p.start(ctx)
		if err != nil {
			return err
		}
		if r.sc.Nodes == 1 {
			r.urls = []string{url}
		}
		r.logf("%s serving (log %s)", name, p.logPath)
	}
	return nil
}

// nodeReady recognises a hive node's "hive node serving" log line (JSON)
// and returns its NATS URL.
func nodeReady(line string) (string, bool) {
	var l struct {
		Message string `json:"message"`
		NATS    string `json:"nats"`
	}
	if json.Unmarshal([]byte(line), &l) != nil || l.Message != "hive node serving" {
		return "", false
	}
	return l.NATS, true
}

// exited records a process that ended without the runner stopping it: a
// node that killed itself (a kill fault), or a crash.
func (r *runner) exited(p *proc, err error) {
	r.rec.event(time.Now(), Event{Kind: "runner", Node: p.node, Detail: "exited", Line: fmt.Sprintf("%s exited: %v", p.name, err)})
	r.logf("%s exited: %v", p.name, err)
}

// writeConfig writes the scenario's hive configuration into dir, with
// chaos enabled unless the scenario says otherwise.
func (r *runner) writeConfig(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	global := r.sc.Hive.Global
	var keys map[string]any
	if err := yaml.Unmarshal(global, &keys); err != nil {
		return fmt.Errorf("hive.global: %w", err)
	}
	if _, ok := keys["chaos"]; !ok {
		global = append(append([]byte{}, global...), []byte("\n# added by the chaos runner\nchaos:\n  enabled: true\n")...)
	}
	if err := os.WriteFile(filepath.Join(dir, config.GlobalFile), global, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, config.ModelsFile), r.sc.Hive.Models, 0o644)
}

// startServers starts n nats-server processes clustered on loopback, each
// with JetStream and a store of its own, waits until each accepts clients,
// then until JetStream answers (its cluster has a leader).
func (r *runner) startServers(ctx context.Context, n int) error {
	bin, err := findBinary(r.o.NATSServer, "nats-server", "--nats-server", "nats-server")
	if err != nil {
		return err
	}
	ports, err := freePorts(2 * n)
	if err != nil {
		return err
	}
	routes := make([]string, n)
	for i := range n {
		routes[i] = "nats://127.0.0.1:" + strconv.Itoa(ports[n+i])
	}
	for i := range n {
		name := "s" + strconv.Itoa(i+1)
		dir, err := filepath.Abs(filepath.Join(r.o.Out, "nats", name))
		if err != nil {
			return err
		}
		var others []string
		for j, route := range routes {
			if j != i {
				others = append(others, route)
			}
		}
		args := []string{"-a", "127.0.0.1", "-p", strconv.Itoa(ports[i]), "-n", "chaos-" + name,
			"-js", "-sd", filepath.Join(dir, "store"),
			"--cluster_name", "chaos", "-cluster", routes[i], "-routes", strings.Join(others, ",")}
		p := &proc{name: "nats-server " + name, path: bin, args: args, logPath: filepath.Join(dir, "nats-server.log"),
			ready:  func(line string) (string, bool) { return "", strings.Contains(line, "Server is ready") },
			exited: r.exited, wg: &r.wg}
		r.servers = append(r.servers, p)
		if _, err := p.start(ctx); err != nil {
			return err
		}
		r.urls = append(r.urls, "nats://127.0.0.1:"+strconv.Itoa(ports[i]))
	}
	r.logf("%d nats-servers clustered on %s", n, strings.Join(r.urls, ", "))
	return r.waitJetStream(ctx)
}

// waitJetStream polls the cluster's JetStream until it answers: electing
// its leader emits nothing a client can wait on.
func (r *runner) waitJetStream(ctx context.Context) error {
	nc, err := nats.Connect(strings.Join(r.urls, ","), nats.Name("chaos setup"))
	if err != nil {
		return fmt.Errorf("connect %s: %w", r.urls[0], err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(jetStreamTimeout)
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("JetStream of the nats-server cluster not ready within %s: %w", jetStreamTimeout, err)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// freePorts returns n loopback ports free a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
