package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

// binary builds the real hive-node once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "hive-node-bin")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "hive-node")
		out, err := exec.Command("go", "build", "-ldflags", "-X main.version=0.1.0-e2e", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	require.NoError(t, buildErr, "go build: %s", binPath)
	return binPath
}

// logLine is one JSON log line of the node.
type logLine map[string]any

// startBinary runs `hive-node serve` with args and returns the process and
// a channel of its JSON log lines (closed when it exits).
func startBinary(t *testing.T, args ...string) (*exec.Cmd, <-chan logLine) {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"serve", "--log-format", "json"}, args...)...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan logLine, 1000)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var l logLine
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				l = logLine{"message": sc.Text()}
			}
			lines <- l
		}
	}()
	return cmd, lines
}

// waitFor returns the first log line whose message is msg.
func waitFor(t *testing.T, lines <-chan logLine, msg string) logLine {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the node exited before logging %q", msg)
			}
			if l["message"] == msg {
				return l
			}
		case <-deadline:
			t.Fatalf("no log line %q within 30s", msg)
		}
	}
}

func repoConfig(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../config")
	require.NoError(t, err)
	return dir
}

func TestBinaryServesAndStopsGracefully(t *testing.T) {
	cmd, lines := startBinary(t,
		"--config-dir", repoConfig(t),
		"--nats-listen", "127.0.0.1:-1",
		"--http-addr", "127.0.0.1:0",
		"--data-dir", t.TempDir(),
		"--node-id", "bin1")
	// It says at start what it keeps (the log lines come in this order).
	persist := waitFor(t, lines, "persistence on: audit stream up to 720h0m0s and 1024 MiB, breaker states in JetStream")
	assert.Equal(t, "HIVE_EVENTS", persist["stream"])
	assert.Equal(t, "hive_breakers", persist["bucket"])
	ready := waitFor(t, lines, "hive node serving")
	assert.Equal(t, "hive.v1.infer", ready["subject"])
	assert.Equal(t, "0.1.0-e2e", ready["version"])

	nc, err := nats.Connect(ready["nats"].(string))
	require.NoError(t, err)
	defer nc.Close()
	msg, err := nc.Request("hive.v1.infer", []byte(`{"model":"claude-4-sonnet","messages":[{"role":"user","content":"hi"}]}`), requestLimit)
	require.NoError(t, err)
	var resp struct {
		Content  string `json:"content"`
		ServedBy string `json:"servedBy"`
		Node     string `json:"node"`
	}
	require.NoError(t, json.Unmarshal(msg.Data, &resp), "reply %s", msg.Data)
	assert.Equal(t, "claude-4-sonnet", resp.ServedBy)
	assert.Equal(t, "bin1", resp.Node)
	assert.NotEmpty(t, resp.Content)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	waitFor(t, lines, "stopped")
	require.NoError(t, cmd.Wait(), "exit status after SIGTERM")
}

// The console log of the real binary, read through a pipe as a log file
// or a collector would, holds no colour codes.
func TestBinaryConsoleLogThroughAPipeHasNoColour(t *testing.T) {
	cmd := exec.Command(binary(t), "serve", "--log-format", "console",
		"--config-dir", repoConfig(t), "--nats-listen", "127.0.0.1:-1", "--http-addr", "off",
		"--data-dir", t.TempDir(), "--node-id", "bin2")
	cmd.Env = append(os.Environ(), "NO_COLOR=", "TERM=xterm-256color")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	sc := bufio.NewScanner(stderr)
	var log []string
	for sc.Scan() {
		log = append(log, sc.Text())
		if strings.Contains(sc.Text(), "hive node serving") {
			break
		}
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	for sc.Scan() {
		log = append(log, sc.Text())
	}
	require.NoError(t, cmd.Wait(), "exit status after SIGTERM; log:\n%s", strings.Join(log, "\n"))
	require.NotEmpty(t, log)
	assert.Regexp(t, `^\d\d:\d\d:\d\d INF `, log[0], "a console line")
	for _, l := range log {
		assert.NotContains(t, l, "\x1b[", "escape codes in %q", l)
	}
}

func TestBinaryCommands(t *testing.T) {
	bad := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bad, "models-resilience.yml"), []byte("models:\n  a:\n    provider: sim\n    timeout: 3x\n"), 0o644))
	// The commands below must fail before they connect; should one not, it
	// finds no server rather than a node someone runs on the default port.
	const nowhere = "nats://127.0.0.1:1"
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string // in stdout or stderr
		notOut   []string
	}{
		{"version", []string{"version"}, 0, "hive-node 0.1.0-e2e", nil},
		{"help", []string{"help"}, 0, "Commands:", nil},
		{"serve help", []string{"serve", "--help"}, 0, "--nats-url", nil},
		{"no command", nil, 2, "no command given", nil},
		{"unknown command", []string{"fly"}, 2, `unknown command "fly"`, nil},
		{"bad flag", []string{"serve", "--log-format", "xml"}, 2, `--log-format: "xml" is not console or json`, nil},
		{"bad node id", []string{"serve", "--node-id", "a.b"}, 2, "--node-id", nil},
		{"bad config", []string{"serve", "--config-dir", bad, "--http-addr", "off"}, 1, `models-resilience.yml:4: models.a.timeout: "3x" is not a duration`, nil},
		// Each command's help lists its own flags only.
		{"help alert", []string{"help", "alert"}, 0, "Usage: hive-node alert ack ALERT-ID", []string{"-duration", "-reason", "-all"}},
		{"help model", []string{"help", "model"}, 0, "-reason", []string{"-duration", "-all"}},
		{"help breaker", []string{"help", "breaker"}, 0, "-duration", []string{"-all"}},
		{"help drain", []string{"help", "drain"}, 0, "-all", []string{"-duration"}},
		{"help events", []string{"help", "events"}, 0, "-model", []string{"-timeout", "-gather", "-reason"}},
		{"help audit", []string{"help", "audit"}, 0, "-follow", []string{"-timeout", "-gather", "-reason"}},
		// A command missing its verb lists the verbs.
		{"breaker without verb", []string{"breaker"}, 2, "breaker: missing the verb: open, close or reset", nil},
		{"model without verb", []string{"model"}, 2, "model: missing the verb: enable or disable", nil},
		{"alert without verb", []string{"alert"}, 2, "alert: missing the verb: ack", nil},
		{"breaker without model", []string{"breaker", "open"}, 2, "breaker open: missing MODEL", nil},
		{"unknown verb", []string{"model", "wake", "gpt-5", "--nats-url", nowhere}, 2, `model: unknown verb "wake": enable or disable`, nil},
		{"duration on close", []string{"breaker", "close", "gpt-5", "--duration", "1m", "--nats-url", nowhere}, 2, "--duration applies to breaker open only", nil},
		// drain names its node, or every node with --all.
		{"drain without node", []string{"drain", "--nats-url", nowhere}, 2, "drain: name the node to drain with --node NAME, or drain every node with --all", nil},
		{"drain with both", []string{"drain", "--all", "--node", "a", "--nats-url", nowhere}, 2, "--all and --node a: give one of them", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binary(t), tt.args...)
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.wantCode, code, "exit code; output:\n%s", out)
			assert.Contains(t, string(out), tt.wantOut)
			for _, not := range tt.notOut {
				assert.NotContains(t, string(out), not)
			}
		})
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}
