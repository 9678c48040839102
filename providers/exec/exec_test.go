package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var hello = &messages.InferRequest{Messages: []*messages.ChatMessage{{Role: "user", Content: "hello there"}}}

var conversation = &messages.InferRequest{Messages: []*messages.ChatMessage{
	{Role: "system", Content: "be brief"},
	{Role: "user", Content: "hi"},
	{Role: "assistant", Content: "hello"},
	{Role: "user", Content: "what's 'up'?"},
}}

// model builds a Model over a shell script (sh is for the tests only: the
// provider itself runs no shell). "$1" in the script is the prompt when
// withPrompt is set.
func model(t *testing.T, cfg Config) *Model {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "agent"
	}
	m, err := New(cfg)
	require.NoError(t, err)
	return m
}

func script(s string, args ...string) []string { return append([]string{"sh", "-c", s, "sh"}, args...) }

func bounded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func class(t *testing.T, err error) messages.ErrorClass {
	t.Helper()
	require.Error(t, err)
	var pe *providers.Error
	require.True(t, errors.As(err, &pe), "%v (%T) is not a *providers.Error", err, err)
	return pe.Class
}

// gone reports whether pid no longer runs: it does not exist, or it is a
// zombie waiting for a parent (in a container, pid 1 may never reap it).
func gone(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// The state follows the command name in parentheses.
	rest := stat[strings.LastIndexByte(string(stat), ')')+1:]
	fields := strings.Fields(string(rest))
	return len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X")
}

func requireGone(t *testing.T, pid int) {
	t.Helper()
	require.Eventually(t, func() bool { return gone(pid) }, 10*time.Second, 5*time.Millisecond, "process %d still runs", pid)
}

func TestPrompt(t *testing.T) {
	assert.Equal(t, "hello there", Prompt(hello))
	assert.Equal(t, "system: be brief\n\nuser: hi\n\nassistant: hello\n\nuser: what's 'up'?", Prompt(conversation))
	assert.Equal(t, "", Prompt(&messages.InferRequest{}))
}

func TestPromptOnStdin(t *testing.T) {
	m := model(t, Config{Command: []string{"cat"}})
	res, err := m.Complete(bounded(t), hello)
	require.NoError(t, err)
	assert.Equal(t, "hello there", res.Content)
	assert.Nil(t, res.Usage)

	res, err = m.Complete(bounded(t), conversation)
	require.NoError(t, err)
	assert.Equal(t, Prompt(conversation), res.Content)
}

func TestPromptInArguments(t *testing.T) {
	// With {prompt} in an argument, nothing comes on stdin, and the
	// prompt is one argument, quotes and all: no shell splits it.
	m := model(t, Config{Command: script(`printf '[%s] [%s] stdin=' "$1" "$2"; cat; echo .`, "--message={prompt}", "{prompt}")})
	res, err := m.Complete(bounded(t), conversation)
	require.NoError(t, err)
	p := Prompt(conversation)
	assert.Equal(t, "[--message="+p+"] ["+p+"] stdin=.", res.Content)
}

func TestEnvAndDir(t *testing.T) {
	dir := t.TempDir()
	m := model(t, Config{Command: script(`echo "$HIVE_TEST_VAR $(pwd) ${PATH:+path}"`), Env: []string{"HIVE_TEST_VAR=set"}, Dir: dir})
	res, err := m.Complete(bounded(t), hello)
	require.NoError(t, err)
	real, _ := filepath.EvalSymlinks(dir)
	assert.Equal(t, "set "+real+" path", res.Content, "Env is added to the node's environment")
}

func TestFailures(t *testing.T) {
	notExecutable := filepath.Join(t.TempDir(), "agent.sh")
	require.NoError(t, os.WriteFile(notExecutable, []byte("#!/bin/sh\necho hi\n"), 0o644))
	tests := []struct {
		name     string
		cfg      Config
		want     messages.ErrorClass
		contains []string
	}{
		{"not found in PATH", Config{Command: []string{"hive-no-such-agent"}}, messages.ErrorClass_connection, []string{"could not start", "hive-no-such-agent"}},
		{"no such file", Config{Command: []string{"/nonexistent/agent"}}, messages.ErrorClass_connection, []string{"could not start"}},
		{"not executable", Config{Command: []string{notExecutable}}, messages.ErrorClass_connection, []string{"permission denied"}},
		{"bad dir", Config{Command: []string{"cat"}, Dir: "/nonexistent-dir"}, messages.ErrorClass_connection, []string{"could not start"}},
		{"non-zero exit", Config{Command: script(`echo partial; echo "model crashed" >&2; exit 3`)}, messages.ErrorClass_server_error, []string{"exit status 3", "model crashed"}},
		{"killed by a signal", Config{Command: script(`kill -9 $$`)}, messages.ErrorClass_server_error, []string{"signal: killed"}},
		{"empty output", Config{Command: []string{"true"}}, messages.ErrorClass_malformed, []string{"no output"}},
		{"blank output", Config{Command: script(`printf '  \n\t\n'; echo why >&2`)}, messages.ErrorClass_malformed, []string{"no output: why"}},
		{"output too large", Config{Command: script(`head -c 5000000 /dev/zero | tr '\0' a`)}, messages.ErrorClass_malformed, []string{"more than 4194304 bytes"}},
		{"endless output", Config{Command: []string{"yes"}}, messages.ErrorClass_malformed, []string{"more than"}},
		{"secret in stderr", Config{Command: script(`echo "auth with $HIVE_TOKEN and sk-ant-api03-abcdefgh failed" >&2; exit 1`), Env: []string{"HIVE_TOKEN=tok-very-secret"}},
			messages.ErrorClass_server_error, []string{"auth with [redacted] and [redacted] failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := model(t, tt.cfg)
			_, err := m.Complete(bounded(t), hello)
			assert.Equal(t, tt.want, class(t, err), "%v", err)
			for _, s := range tt.contains {
				assert.Contains(t, err.Error(), s)
			}
			assert.NotContains(t, err.Error(), "tok-very-secret")
		})
	}
}

func TestStderrTailIsBounded(t *testing.T) {
	m := model(t, Config{Command: script(`i=0; while [ $i -lt 500 ]; do echo "line $i of noise" >&2; i=$((i+1)); done; echo "the real cause" >&2; exit 1`)})
	_, err := m.Complete(bounded(t), hello)
	assert.Equal(t, messages.ErrorClass_server_error, class(t, err))
	assert.Contains(t, err.Error(), "the real cause", "the tail is kept")
	assert.NotContains(t, err.Error(), "line 1 of noise", "the head is dropped")
	assert.Less(t, len(err.Error()), stderrTail+200)
}

func TestTimeout(t *testing.T) {
	m := model(t, Config{Command: []string{"sleep", "300"}, Timeout: 100 * time.Millisecond})
	_, err := m.Complete(bounded(t), hello)
	assert.Equal(t, messages.ErrorClass_timeout, class(t, err), "%v", err)
	assert.EqualError(t, err, "timeout: agent gave no answer within its deadline")
}

func TestCallerContext(t *testing.T) {
	m := model(t, Config{Command: []string{"sleep", "300"}})
	ctx, cancel := context.WithTimeout(bounded(t), 100*time.Millisecond)
	defer cancel()
	_, err := m.Complete(ctx, hello)
	assert.Equal(t, messages.ErrorClass_timeout, class(t, err))

	ctx, cancel = context.WithCancel(bounded(t))
	cancel()
	_, err = m.Complete(ctx, hello)
	assert.Equal(t, messages.ErrorClass_cancelled, class(t, err))
}

// TestForkedChildKilled: a command that forks a child which sleeps; on
// timeout the whole process group goes, the child too.
func TestForkedChildKilled(t *testing.T) {
	m := model(t, Config{Command: script(`sleep 300 & echo $!; wait`), Timeout: time.Second})
	s, err := m.Stream(bounded(t), hello)
	require.NoError(t, err)
	defer s.Close()
	c, err := s.Recv()
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(c.Delta))
	require.NoError(t, err, "the child's pid, got %q", c.Delta)
	require.False(t, gone(pid), "the child runs")
	_, err = s.Recv()
	assert.Equal(t, messages.ErrorClass_timeout, class(t, err), "%v", err)
	requireGone(t, pid)
}

// TestCloseKillsTheGroup: Close (the caller going away) kills the child
// too, and ends a Recv in progress.
func TestCloseKillsTheGroup(t *testing.T) {
	m := model(t, Config{Command: script(`sleep 300 & echo $!; wait`)})
	s, err := m.Stream(bounded(t), hello)
	require.NoError(t, err)
	c, err := s.Recv()
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(c.Delta))
	require.NoError(t, err)
	ended := make(chan error, 1)
	go func() {
		_, err := s.Recv()
		ended <- err
	}()
	require.NoError(t, s.Close())
	select {
	case err := <-ended:
		assert.Equal(t, messages.ErrorClass_cancelled, class(t, err), "%v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a Recv in progress")
	}
	requireGone(t, pid)
	require.NoError(t, s.Close(), "Close twice")
}

// TestLeftoverChildKilled: a command that exits leaving a background child
// holding its output; the answer comes at once and the child is killed.
func TestLeftoverChildKilled(t *testing.T) {
	m := model(t, Config{Command: script(`sleep 300 & echo $!`)})
	res, err := m.Complete(bounded(t), hello)
	require.NoError(t, err)
	pid, err := strconv.Atoi(res.Content)
	require.NoError(t, err)
	requireGone(t, pid)
}

// TestEscapedChildDoesNotHold: a child that leaves the process group (a
// new session) keeps the output pipe open and survives the group kill; the
// answer still comes, once the pipe grace has passed.
func TestEscapedChildDoesNotHold(t *testing.T) {
	if _, err := osexec.LookPath("setsid"); err != nil {
		t.Skip("setsid not installed")
	}
	fifo := filepath.Join(t.TempDir(), "ready")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	// The escaped child reports its pid only once it is in its own session.
	m := model(t, Config{Command: script(`setsid sh -c 'echo $$ > "$0"; exec sleep 300' "$1" & read pid < "$1"; echo $pid`, fifo)})
	res, err := m.Complete(bounded(t), hello)
	require.NoError(t, err)
	pid, err := strconv.Atoi(res.Content)
	require.NoError(t, err)
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	assert.False(t, gone(pid), "the escaped child outlived the group kill, as it may")
}

func TestStream(t *testing.T) {
	m := model(t, Config{Command: script(`printf 'one\ntwo\n'; printf three`)})
	s, err := m.Stream(bounded(t), hello)
	require.NoError(t, err)
	defer s.Close()
	var got []string
	for {
		c, err := s.Recv()
		if err != nil {
			assert.ErrorIs(t, err, io.EOF, "a zero exit is complete")
			break
		}
		got = append(got, c.Delta)
	}
	assert.Equal(t, []string{"one\n", "two\n", "three"}, got)
	_, err = s.Recv()
	assert.ErrorIs(t, err, io.EOF)
}

func TestStreamEnds(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		wantText string
		want     messages.ErrorClass // ok: complete
	}{
		{"stdin prompt", Config{Command: []string{"cat"}}, "hello there", messages.ErrorClass_ok},
		{"non-zero exit mid-stream", Config{Command: script(`echo part; echo oops >&2; exit 2`)}, "part\n", messages.ErrorClass_stream_cut},
		{"non-zero exit before output", Config{Command: script(`echo oops >&2; exit 2`)}, "", messages.ErrorClass_server_error},
		{"empty output", Config{Command: []string{"true"}}, "", messages.ErrorClass_malformed},
		{"timeout", Config{Command: script(`echo part; exec sleep 300`), Timeout: 200 * time.Millisecond}, "part\n", messages.ErrorClass_timeout},
		{"output too large", Config{Command: script(`head -c 5000000 /dev/zero | tr '\0' a`)}, "", messages.ErrorClass_malformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := model(t, tt.cfg).Stream(bounded(t), hello)
			require.NoError(t, err)
			defer s.Close()
			var text strings.Builder
			for {
				c, rerr := s.Recv()
				if rerr != nil {
					err = rerr
					break
				}
				text.WriteString(c.Delta)
			}
			if tt.name != "output too large" {
				assert.Equal(t, tt.wantText, text.String())
			}
			if tt.want == messages.ErrorClass_ok {
				assert.ErrorIs(t, err, io.EOF)
				return
			}
			assert.Equal(t, tt.want, class(t, err), "%v", err)
		})
	}
}

func TestStreamNotFound(t *testing.T) {
	_, err := model(t, Config{Command: []string{"hive-no-such-agent"}}).Stream(bounded(t), hello)
	assert.Equal(t, messages.ErrorClass_connection, class(t, err))
}

// TestStreamLongLinesKeepUTF8: a line longer than a chunk is cut into
// pieces on rune boundaries, so every piece is valid and nothing is lost.
func TestStreamLongLinesKeepUTF8(t *testing.T) {
	m := model(t, Config{Command: script(`i=0; while [ $i -lt 50000 ]; do printf 'é'; i=$((i+1)); done`)})
	s, err := m.Stream(bounded(t), hello)
	require.NoError(t, err)
	defer s.Close()
	var text strings.Builder
	pieces := 0
	for {
		c, err := s.Recv()
		if err != nil {
			require.ErrorIs(t, err, io.EOF)
			break
		}
		require.True(t, utf8.ValidString(c.Delta), "piece %d is not valid UTF-8", pieces)
		text.WriteString(c.Delta)
		pieces++
	}
	assert.Greater(t, pieces, 1)
	assert.Equal(t, strings.Repeat("é", 50000), text.String())
}

func TestNew(t *testing.T) {
	_, err := New(Config{Name: "a"})
	assert.EqualError(t, err, "exec a: Command is empty")
	_, err = New(Config{Name: "a", Command: []string{"cat"}, Timeout: -time.Second})
	assert.EqualError(t, err, "exec a: Timeout -1s is negative")
	_, err = New(Config{Name: "a", Command: []string{"cat"}, Env: []string{"NOEQUALS"}})
	assert.EqualError(t, err, `exec a: Env entry "NOEQUALS" is not KEY=value`)
}
