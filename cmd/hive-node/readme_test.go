package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/config"
)

// consoleStep is one "$ command" of a README console block and the output
// the README shows under it.
type consoleStep struct {
	line int // of the command in README.md
	cmd  string
	want []string
}

// consoleBlocks returns the ```console blocks of the README, as steps.
func consoleBlocks(t *testing.T, readme string) [][]consoleStep {
	t.Helper()
	var blocks [][]consoleStep
	var cur []consoleStep
	in := false
	for i, l := range strings.Split(readme, "\n") {
		switch {
		case !in && l == "```console":
			in, cur = true, nil
		case in && l == "```":
			in = false
			blocks = append(blocks, cur)
		case in && strings.HasPrefix(l, "$ "):
			cur = append(cur, consoleStep{line: i + 1, cmd: strings.TrimPrefix(l, "$ ")})
		case in && len(cur) > 0:
			cur[len(cur)-1].want = append(cur[len(cur)-1].want, l)
		}
	}
	require.False(t, in, "README.md: a console block is not closed")
	return blocks
}

// splitArgs splits a command line as a shell would for the README's
// commands: words, and double-quoted strings.
func splitArgs(s string) []string {
	var args []string
	var b strings.Builder
	quoted, any := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, any = !quoted, true
		case r == ' ' && !quoted:
			if any {
				args = append(args, b.String())
			}
			b.Reset()
			any = false
		default:
			b.WriteRune(r)
			any = true
		}
	}
	if any {
		args = append(args, b.String())
	}
	return args
}

// What differs between two runs: times, uptimes, the version, addresses.
var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`), "<time>"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`), "<time>"}, // job submitted
	{regexp.MustCompile(`^\d\d:\d\d:\d\d `), "<clock> "},              // job watch
	{regexp.MustCompile(`version [^,)]+`), "version <v>"},
	{regexp.MustCompile(`up [0-9hms.]+\)`), "up <d>)"},
	{regexp.MustCompile(`http://127\.0\.0\.1:\d+`), "<http>"},
}

func normalize(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		for _, v := range volatile {
			l = v.re.ReplaceAllString(l, v.with)
		}
		out[i] = strings.TrimRight(l, " ")
	}
	return out
}

// TestREADMEConsoleExamples runs every README console block made of
// hive-node commands (and `echo $?`) against a node with the default
// configuration, named vm as in the README, and compares what they print
// (stdout, then the error line main prints on stderr) with what the README
// shows, times, uptimes, versions and addresses aside. Blocks with other
// programs (nats, curl, make) are checked by hand; they are listed in the
// test log.
func TestREADMEConsoleExamples(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	t.Setenv(envAdminToken, "readme-example-token-0123456789")
	t.Setenv("HIVE_NATS_USER", "root") // the README's operator
	srv := bustest.NewServer(t)
	cfg, err := config.Defaults()
	require.NoError(t, err)
	f := &serveFlags{natsFlags: natsFlags{natsURL: srv.ClientURL()}, nodeID: "vm", httpAddr: "127.0.0.1:0"}
	n, err := startNode(f, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, n.Stop()) })

	ran := 0
blocks:
	for _, block := range consoleBlocks(t, string(data)) {
		for _, s := range block {
			if !strings.HasPrefix(s.cmd, "hive-node ") && s.cmd != "echo $?" {
				t.Logf("README.md:%d: not run here: %s", s.line, s.cmd)
				continue blocks
			}
		}
		code := 0
		for _, s := range block {
			var got []string
			if s.cmd == "echo $?" {
				got = []string{strconv.Itoa(code)}
			} else {
				args := splitArgs(strings.TrimPrefix(s.cmd, "hive-node "))
				if args[0] == "dashboard" {
					args = append(args, "--http-url", n.HTTPURL())
				} else {
					args = append(args, "--nats-url", n.NATSURL())
				}
				var out, errOut bytes.Buffer
				err := run(args, &out, &errOut)
				code = 0
				if err != nil {
					code = exitCode(err)
					if !errors.Is(err, flag.ErrHelp) {
						fmt.Fprintln(&out, "hive-node:", err)
					}
				}
				got = strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			}
			assert.Equal(t, normalize(s.want), normalize(got), "README.md:%d: $ %s", s.line, s.cmd)
			ran++
		}
	}
	assert.GreaterOrEqual(t, ran, 7, "README commands run: the operator session and the dashboard command")
}
