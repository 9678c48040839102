// Command chaos runs chaos scenarios against hive nodes it starts, or
// against a running deployment, and scores them against their objectives.
//
//	chaos run scenarios/single-model-failure.yml
//	chaos list
//	chaos validate scenarios/*.yml
//
// Exit status: 0 when every objective passed, 1 when one failed, 2 for a
// usage or scenario error, 3 when the run could not complete, 130 when it
// was interrupted (the partial report is still written).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cmmv-hive/resilience/chaos"
)

// Exit statuses.
const (
	exitFailed      = 1
	exitUsage       = 2
	exitRunError    = 3
	exitInterrupted = 130
)

// exitError carries an exit status; its message, when any, is printed.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	code := exitRunError
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintln(os.Stderr, "chaos: "+msg)
	}
	os.Exit(code)
}

func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, msg: fmt.Sprintf(format, args...)}
}

const usage = `chaos runs chaos scenarios against hive nodes and scores them.

Usage:
  chaos run FILE [flags]     run one scenario, print its table, write its report
  chaos list [DIR]           the scenarios of DIR (default scenarios/)
  chaos validate FILE...     check scenario files
  chaos help [command]       this text, or a command's flags

Exit status: 0 every objective passed; 1 an objective failed; 2 usage or
scenario error; 3 the run could not complete; 130 interrupted.
`

// run is the whole command: args without the program name.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError("")
	}
	switch args[0] {
	case "run":
		return runCmd(ctx, args[1:], stdout, stderr)
	case "list":
		return listCmd(args[1:], stdout, stderr)
	case "validate":
		return validateCmd(args[1:], stdout, stderr)
	case "help", "-h", "--help", "-help":
		if len(args) > 1 {
			fs, _ := commandFlags(args[1], stderr)
			if fs == nil {
				return usageError("unknown command %q", args[1])
			}
			fs.SetOutput(stdout)
			fs.Usage()
			return nil
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError("unknown command %q", args[0])
}

// runFlags are the flags of chaos run.
type runFlags struct {
	out, natsURL, creds, prefix, hiveNode, natsServer string
	short, quiet                                      bool
}

// commandFlags returns the flag set of a command, and the runFlags it
// fills for run.
func commandFlags(cmd string, stderr io.Writer) (*flag.FlagSet, *runFlags) {
	fs := flag.NewFlagSet("chaos "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	switch cmd {
	case "run":
		f := &runFlags{}
		fs.StringVar(&f.out, "out", "", "output directory (default chaos-results/<scenario>-<timestamp>)")
		fs.StringVar(&f.natsURL, "nats-url", "", "run against this deployment (comma-separated URLs) instead of starting nodes; kill and restart steps are refused")
		fs.StringVar(&f.creds, "nats-creds", "", "NATS credentials file for --nats-url (user and password come from HIVE_NATS_USER/HIVE_NATS_PASSWORD, a token from HIVE_NATS_TOKEN)")
		fs.StringVar(&f.prefix, "subject-prefix", "", "the deployment's subjectPrefix (default the scenario's, else hive)")
		fs.StringVar(&f.hiveNode, "hive-node", "", "hive-node binary (default bin/hive-node, then PATH)")
		fs.StringVar(&f.natsServer, "nats-server", "", "nats-server binary for scenarios of several nodes (default bin/nats-server, then PATH; make nats-server builds it)")
		fs.BoolVar(&f.short, "short", false, "run the scenario's short version (its short: block)")
		fs.BoolVar(&f.quiet, "quiet", false, "no progress line and no runner log on stderr")
		fs.Usage = func() {
			fmt.Fprintf(fs.Output(), "Usage: chaos run FILE [flags]\n\nRuns the scenario: starts the hive nodes it needs (and nats-servers for several),\n"+
				"drives the load, applies the timeline, prints a table of the objectives and writes\nresults.json, requests.jsonl, timeline.svg and report.txt into --out.\nCtrl-C stops the load, clears the faults, stops the nodes and writes the partial report.\n\nFlags:\n")
			fs.PrintDefaults()
		}
		return fs, f
	case "list":
		fs.Usage = func() {
			fmt.Fprintf(fs.Output(), "Usage: chaos list [DIR]\n\nLists the scenarios of DIR (default scenarios/): name, nodes, load duration, description.\n")
		}
		return fs, nil
	case "validate":
		fs.Usage = func() {
			fmt.Fprintf(fs.Output(), "Usage: chaos validate FILE...\n\nChecks scenario files (keys, types, bounds, references, the hive configuration, the short version);\nprints every problem as file:line: key: message. Exit status 2 when one is invalid.\n")
		}
		return fs, nil
	}
	return nil, nil
}

// parseInterspersed parses flags given before or after the positional
// arguments, which it returns.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := commandFlags("run", stderr)
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return usageError("")
	}
	if len(pos) != 1 {
		fs.Usage()
		return usageError("run takes one scenario file, got %d", len(pos))
	}
	sc, err := chaos.ReadFile(pos[0])
	if err != nil {
		return usageError("%v", err)
	}
	if f.short {
		if sc, err = sc.Shorten(); err != nil {
			return usageError("%v", err)
		}
	}
	out := f.out
	if out == "" {
		out = filepath.Join("chaos-results", sc.Name+"-"+time.Now().Format("20060102-150405"))
	}
	opts := chaos.Options{NATSURL: f.natsURL, CredsFile: f.creds, SubjectPrefix: f.prefix,
		HiveNode: f.hiveNode, NATSServer: f.natsServer, Out: out}
	if !f.quiet {
		opts.Progress, opts.Log, opts.Terminal = stderr, stderr, isTerminal(stderr)
	}

	// The first Ctrl-C stops the run gracefully; stop() then restores the
	// default, so a second one ends the program at once.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	rep, runErr := chaos.Run(ctx, sc, opts)
	if werr := rep.WriteFiles(out); werr != nil {
		fmt.Fprintf(stderr, "chaos: writing the report: %v\n", werr)
	}
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	switch {
	case errors.Is(runErr, chaos.ErrInterrupted):
		return &exitError{code: exitInterrupted, msg: "interrupted: the partial report is in " + out}
	case runErr != nil:
		return &exitError{code: exitRunError, msg: runErr.Error()}
	case !rep.Passed():
		return &exitError{code: exitFailed}
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func listCmd(args []string, stdout, stderr io.Writer) error {
	fs, _ := commandFlags("list", stderr)
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil || len(pos) > 1 {
		return usageError("list takes at most one directory")
	}
	dir := "scenarios"
	if len(pos) == 1 {
		dir = pos[0]
	}
	files, err := chaos.ScenarioFiles(dir)
	if err != nil {
		return usageError("%v", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tNODES\tDURATION\tSHORT\tDESCRIPTION")
	invalid := 0
	for _, file := range files {
		sc, err := chaos.ReadFile(file)
		if err != nil {
			invalid++
			first := strings.SplitN(err.Error(), "\n", 2)[0]
			fmt.Fprintf(tw, "%s\t-\t-\t-\tINVALID: %s\n", filepath.Base(file), first)
			continue
		}
		short := "-"
		if sc.Short != nil {
			short = sc.Short.Duration.String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", sc.Name, sc.Nodes, sc.Load.Duration, short, summary(sc.Description))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if invalid > 0 {
		return usageError("%d invalid scenario file(s): chaos validate shows every problem", invalid)
	}
	return nil
}

// summary is a description's first clause, on one line: what the scenario
// breaks. chaos validate and the file have the rest.
func summary(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if i := strings.IndexAny(s, ";."); i > 0 {
		s = s[:i]
	}
	return s
}

func validateCmd(args []string, stdout, stderr io.Writer) error {
	fs, _ := commandFlags("validate", stderr)
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return usageError("")
	}
	if len(pos) == 0 {
		fs.Usage()
		return usageError("validate takes at least one scenario file")
	}
	invalid := 0
	for _, file := range pos {
		sc, err := chaos.ReadFile(file)
		if err != nil {
			invalid++
			fmt.Fprintln(stdout, err)
			continue
		}
		short := ""
		if sc.Short != nil {
			short = ", short version " + sc.Short.Duration.String()
		}
		fmt.Fprintf(stdout, "%s: ok (%s: %d node(s), %s, %d steps, %d objectives%s)\n", file, sc.Name, sc.Nodes, sc.Load.Duration, len(sc.Timeline), len(sc.Objectives), short)
	}
	if invalid > 0 {
		return usageError("%d of %d file(s) invalid", invalid, len(pos))
	}
	return nil
}
