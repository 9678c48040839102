package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// envAdminToken names the environment variable with the operator token
// that the dashboard's admin actions require. It is never a flag (flags
// show in ps) and never logged.
const envAdminToken = "HIVE_ADMIN_TOKEN"

// minTokenLength is the length below which the node warns that the token
// is easy to guess.
const minTokenLength = 16

// adminToken reads the operator token from the environment; empty turns
// the dashboard's admin actions off.
func adminToken(log zerolog.Logger) string {
	token := strings.TrimSpace(os.Getenv(envAdminToken))
	if token != "" && len(token) < minTokenLength {
		log.Warn().Int("length", len(token)).Int("want_at_least", minTokenLength).
			Msg(envAdminToken + " is short: anyone who can reach the HTTP address may guess it")
	}
	return token
}

const dashboardUsage = `Usage: hive-node dashboard [--http-url http://127.0.0.1:8080]

Prints the dashboard's address and checks that it answers: the page and
its state (every node's models, through the node's NATS connection).
Exits 1 when it does not. Admin actions on the page need the operator
token the node was started with (` + envAdminToken + `).`

func dashboardCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dashboard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("http-url", "http://127.0.0.1:8080", "HTTP address of a running node (its --http-addr)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the node's answers")
	fs.Usage = func() {
		fmt.Fprint(stderr, dashboardUsage+"\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("dashboard: unexpected arguments %q", fs.Args())}
	}
	u, err := url.Parse(strings.TrimRight(*base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError{fmt.Sprintf("--http-url: want http://host:port, got %q", *base)}
	}
	page := u.String() + "/"
	fmt.Fprintf(stdout, "dashboard: %s\n", page)

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	notThere := func(format string, a ...any) error {
		return exitError{1, fmt.Sprintf("the dashboard at %s does not answer: %s (is a node running with --http-addr %s? make run starts one)",
			page, fmt.Sprintf(format, a...), u.Host)}
	}
	body, ctype, status, err := httpGet(ctx, page)
	switch {
	case err != nil:
		return notThere("%v", err)
	case status == http.StatusNotFound:
		return notThere("GET / is 404: this node serves no dashboard")
	case status != http.StatusOK || !strings.HasPrefix(ctype, "text/html") || !strings.Contains(string(body), `data-app="hive-dashboard"`):
		return notThere("GET / answered %d %s, not the dashboard page", status, ctype)
	}
	body, _, status, err = httpGet(ctx, page+"api/state")
	if err != nil {
		return notThere("GET /api/state: %v", err)
	}
	var state struct {
		Node         string `json:"node"`
		AdminEnabled bool   `json:"adminEnabled"`
		Error        string `json:"error"`
		Nodes        []struct {
			Node   string            `json:"node"`
			Models []json.RawMessage `json:"models"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(body, &state); err != nil || status != http.StatusOK {
		return notThere("GET /api/state answered %d: %.200s", status, body)
	}
	models := 0
	for _, n := range state.Nodes {
		models += len(n.Models)
	}
	admin := "on"
	if !state.AdminEnabled {
		admin = "off (the node was started without " + envAdminToken + ")"
	}
	fmt.Fprintf(stdout, "served by node %s: %d node(s), %d model(s); admin actions %s\n", state.Node, len(state.Nodes), models, admin)
	if state.Error != "" {
		return exitError{1, "the dashboard answers but cannot read the cluster: " + state.Error}
	}
	return nil
}

// httpGet fetches url and returns its body (up to 8 MiB), content type and status.
func httpGet(ctx context.Context, url string) ([]byte, string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", 0, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", 0, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	return body, res.Header.Get("Content-Type"), res.StatusCode, err
}
