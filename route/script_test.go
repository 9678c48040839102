package route

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The data-driven harness, in the style of etcd raft's: a testdata file is
// a sequence of steps: one or more commands, a line each, then "----" and
// the output they must produce, then a blank line. Lines before a command that are blank or
// start with # are comments. `go test ./route -rewrite` writes the outputs
// the code produces instead of checking them; review the diff before
// committing it.

var rewrite = flag.Bool("rewrite", false, "rewrite the expected outputs of testdata/*.txt")

// step is one or more commands of a script, a line each, and their
// expected output.
type step struct {
	preamble []string // comments and blank lines before the commands
	cmd      string
	line     int // of cmd, for failure messages
	want     string
}

// parseScript reads a script file.
func parseScript(t *testing.T, path string) (steps []step, trailer []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var pre []string
	line := 0
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		line++
		return sc.Text(), true
	}
	for {
		l, ok := next()
		if !ok {
			break
		}
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			pre = append(pre, l)
			continue
		}
		s := step{preamble: pre, cmd: l, line: line}
		pre = nil
		for {
			more, ok := next()
			if !ok {
				t.Fatalf("%s:%d: command %q is not followed by ----", path, s.line, s.cmd)
			}
			if more == "----" {
				break
			}
			s.cmd += "\n" + more
		}
		var out []string
		for {
			o, ok := next()
			if !ok || o == "" {
				break
			}
			out = append(out, o)
		}
		s.want = strings.Join(out, "\n")
		steps = append(steps, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return steps, pre
}

// runScripts runs every testdata/*.txt file as a subtest: run is given
// each command (its fields) and returns its output.
func runScripts(t *testing.T, newRunner func(t *testing.T) func(args []string) string) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata scripts (%v)", err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			steps, trailer := parseScript(t, path)
			run := newRunner(t)
			var b strings.Builder
			for _, s := range steps {
				var out strings.Builder
				for _, c := range strings.Split(s.cmd, "\n") {
					out.WriteString(run(strings.Fields(c)))
				}
				got := strings.TrimRight(out.String(), "\n")
				if *rewrite {
					for _, p := range s.preamble {
						b.WriteString(p + "\n")
					}
					fmt.Fprintf(&b, "%s\n----\n", s.cmd)
					if got != "" {
						b.WriteString(got + "\n")
					}
					b.WriteString("\n")
					continue
				}
				if got != s.want {
					t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", path, s.line, s.cmd, indent(got), indent(s.want))
				}
			}
			if *rewrite {
				out := strings.TrimRight(b.String(), "\n") + "\n"
				for _, p := range trailer {
					if strings.TrimSpace(p) != "" {
						out += p + "\n"
					}
				}
				if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func indent(s string) string {
	if s == "" {
		return "  (nothing)"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
