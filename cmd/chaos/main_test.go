package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// hiveNode is the hive-node binary TestMain builds for the end-to-end
// tests; empty under -short.
var hiveNode string

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		if !testing.Short() {
			dir, err := os.MkdirTemp("", "chaos-e2e-bin")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			hiveNode = filepath.Join(dir, "hive-node")
			out, err := exec.Command("go", "build", "-o", hiveNode, "github.com/cmmv-hive/resilience/cmd/hive-node").CombinedOutput()
			if err != nil {
				fmt.Fprintf(os.Stderr, "go build hive-node: %v\n%s", err, out)
				return 1
			}
		}
		code := m.Run()
		if code == 0 {
			// Every goroutine of a run (load, timeline, events, process
			// waiters) has ended once run returns.
			if err := goleak.Find(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		return code
	}()
	os.Exit(code)
}

func scenario(name string) string { return filepath.Join("..", "..", "scenarios", name+".yml") }

// exitCode is the status main would exit with for err.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitRunError
}

// results is what the tests read of results.json.
type results struct {
	Passed      bool `json:"passed"`
	Interrupted bool `json:"interrupted"`
	Short       bool `json:"short"`
	Objectives  []struct {
		Objective string `json:"objective"`
		Measured  string `json:"measured"`
		Pass      bool   `json:"pass"`
		Note      string `json:"note"`
	} `json:"objectives"`
	Steps []struct {
		Step  string `json:"step"`
		Error string `json:"error"`
	} `json:"steps"`
	Summary struct {
		Requests int `json:"requests"`
		OK       int `json:"ok"`
		Replayed int `json:"replayed"`
		Jobs     *struct {
			Accepted int `json:"accepted"`
			Done     int `json:"done"`
		} `json:"jobs"`
	} `json:"summary"`
	Events []struct {
		Kind string `json:"kind"`
		Line string `json:"line"`
	} `json:"events"`
}

func readResults(t *testing.T, dir string) results {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	require.NoError(t, err)
	var r results
	require.NoError(t, json.Unmarshal(b, &r))
	return r
}

// TestShortScenarios runs the short versions of three single-node
// scenarios end to end, through the same entry point as the command line:
// a real hive-node process with chaos enabled, faults and operator
// commands over NATS, and every objective must pass.
func TestShortScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("starts hive-node processes: not with -short")
	}
	for _, name := range []string{"single-model-failure", "manual-recovery", "rate-limit-storm"} {
		t.Run(name, func(t *testing.T) {
			out := t.TempDir()
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"run", scenario(name), "--short", "--hive-node", hiveNode, "--out", out}, &stdout, &stderr)
			require.NoError(t, err, "exit %d\nstdout:\n%s\nstderr:\n%s", exitCode(err), &stdout, &stderr)
			r := readResults(t, out)
			assert.True(t, r.Passed)
			assert.True(t, r.Short)
			assert.Positive(t, r.Summary.Requests)
			for _, o := range r.Objectives {
				assert.True(t, o.Pass, "%s: measured %s %s", o.Objective, o.Measured, o.Note)
			}
			require.NotEmpty(t, r.Steps)
			for _, s := range r.Steps {
				assert.Empty(t, s.Error, s.Step)
			}
			assert.Contains(t, stdout.String(), "PASSED")
			assert.Contains(t, stderr.String(), "load started", "the runner's log goes to stderr")
			for _, f := range []string{"results.json", "requests.jsonl", "timeline.svg", "report.txt", "nodes/n1/hive-node.log", "nodes/n1/config/resilience.yml"} {
				assert.FileExists(t, filepath.Join(out, f))
			}
		})
	}
}

// TestJobsAndKeys runs two small scenarios against a real hive-node
// process (one node, its embedded JetStream): a load of durable jobs,
// each submitted with a key of its own, every one of which ends with one
// result; and requests sent again with their idempotency key whenever an
// attempt gets no answer within 50 ms, against a model that takes
// 150 ms, which call the model once per key.
func TestJobsAndKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("starts hive-node processes: not with -short")
	}
	const head = `name: %s
description: d
steadyState: s
hive:
  models:
    m: {provider: sim, sim: {latency: 150ms}}
load:
  rate: 20
  duration: 4s
  timeout: 3s
  idempotencyKeys: true
  mix: [{model: m}]
%sobjectives:
`
	tests := []struct {
		name, load string
		objectives []string
	}{
		{"jobs", "  kind: jobs\n  retry: {after: 1s}\n",
			[]string{"lost_jobs == 0", "unaccepted_jobs == 0", "conflicting_results == 0", "redelivered_jobs == 0", "success_rate == 1"}},
		{"keys", "  retry: {after: 50ms, attempts: 5}\n",
			[]string{"extra_model_calls == 0", "retried_requests >= 75", "success_rate == 1", "lost_requests == 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src := fmt.Sprintf(head, tt.name, tt.load)
			for _, o := range tt.objectives {
				src += "  - " + o + "\n"
			}
			file := filepath.Join(dir, tt.name+".yml")
			require.NoError(t, os.WriteFile(file, []byte(src), 0o644))
			out := filepath.Join(dir, "out")
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"run", file, "--hive-node", hiveNode, "--out", out, "--quiet"}, &stdout, &stderr)
			require.NoError(t, err, "exit %d\nstdout:\n%s\nstderr:\n%s", exitCode(err), &stdout, &stderr)
			r := readResults(t, out)
			assert.True(t, r.Passed)
			require.Len(t, r.Objectives, len(tt.objectives))
			for _, o := range r.Objectives {
				assert.True(t, o.Pass, "%s: measured %s %s", o.Objective, o.Measured, o.Note)
			}
			assert.Equal(t, 80, r.Summary.Requests)
			if tt.name == "keys" {
				assert.GreaterOrEqual(t, r.Summary.Replayed, 75, "answers that were their key's first answer, replayed")
			}
			if tt.name == "jobs" {
				require.NotNil(t, r.Summary.Jobs)
				assert.Equal(t, 80, r.Summary.Jobs.Accepted)
				assert.Equal(t, 80, r.Summary.Jobs.Done)
				assert.Contains(t, stdout.String(), "jobs (warmup included): 80 submitted, 80 accepted")
			}
		})
	}
}

// signalWriter is a stderr that cancels when a line contains want.
type signalWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	want   string
	cancel func()
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.want != "" && strings.Contains(w.buf.String(), w.want) {
		w.want = ""
		w.cancel()
	}
	return len(p), nil
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestInterrupt stops a run as Ctrl-C does, once its fault is injected:
// the load stops, the fault is cleared, the node is stopped, and the
// partial report is written.
func TestInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a hive-node process: not with -short")
	}
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &signalWriter{want: "fault gpt5-down", cancel: cancel}
	var stdout bytes.Buffer
	err := run(ctx, []string{"run", scenario("single-model-failure"), "--short", "--hive-node", hiveNode, "--out", out}, &stdout, stderr)
	require.Equal(t, exitInterrupted, exitCode(err), "err %v\nstderr:\n%s", err, stderr)
	r := readResults(t, out)
	assert.True(t, r.Interrupted)
	assert.False(t, r.Passed)
	assert.Contains(t, stdout.String(), "INTERRUPTED")
	cleared := false
	for _, e := range r.Events {
		cleared = cleared || e.Kind == "admin" && strings.Contains(e.Line, "chaos_clear") && strings.Contains(e.Line, "clear every fault")
	}
	assert.True(t, cleared, "the runner cleared the faults it injected: %v\nstderr:\n%s", r.Events, stderr)
	log, err := os.ReadFile(filepath.Join(out, "nodes", "n1", "hive-node.log"))
	require.NoError(t, err)
	assert.Contains(t, string(log), `"message":"stopped"`, "the node was stopped gracefully (SIGTERM)")
}

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	require.NoError(t, os.WriteFile(bad, []byte("name: bad\nnmae: x\n"), 0o644))
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // a part of stdout
		err    string // a part of the error
	}{
		{"no command", nil, exitUsage, "", ""},
		{"unknown command", []string{"explode"}, exitUsage, "", `unknown command "explode"`},
		{"help", []string{"help"}, 0, "chaos run FILE", ""},
		{"help run", []string{"help", "run"}, 0, "--nats-url", ""},
		{"run without a file", []string{"run"}, exitUsage, "", "run takes one scenario file, got 0"},
		{"run a bad file", []string{"run", bad}, exitUsage, "", `bad.yml:2: nmae: unknown key (did you mean "name"?)`},
		{"short of a scenario without one", []string{"run", bad, "--short"}, exitUsage, "", "nmae"},
		{"validate every scenario", append([]string{"validate"}, allScenarios(t)...), 0, "single-model-failure.yml: ok (single-model-failure: 1 node(s), 40s", ""},
		{"validate a bad file", []string{"validate", scenario("actor-crash"), bad}, exitUsage, `bad.yml:2: nmae: unknown key (did you mean "name"?)`, "1 of 2 file(s) invalid"},
		{"list", []string{"list", filepath.Join("..", "..", "scenarios")}, 0, "\nnode-kill   ", ""},
		{"list a directory without scenarios", []string{"list", dir + "/none"}, exitUsage, "", "no scenario files"},
		{"kill against a deployment", []string{"run", scenario("node-kill"), "--nats-url", "nats://127.0.0.1:1", "--out", filepath.Join(dir, "out"), "--quiet"},
			exitRunError, "RUN ERROR", "needs nodes the runner starts; with --nats-url the deployment's processes are not the runner's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stdout, &stderr)
			assert.Equal(t, tt.code, exitCode(err), "err %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
			assert.Contains(t, stdout.String(), tt.stdout)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
			}
		})
	}
}

func allScenarios(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "scenarios", "*.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return files
}
