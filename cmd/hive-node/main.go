// Command hive-node runs a Hive resilience node (serve: flags and files
// turned into a node.Config, then node.Start) and holds the operator's
// subcommands, which talk NATS and HTTP to running nodes. The node itself
// is assembled by the node package.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=..."; it
// must be SemVer, as the NATS services framework requires.
var version = "0.1.0-dev"

const usage = `hive-node keeps calls to AI models working when models fail.

Usage:
  hive-node <command> [flags]

Commands:
  serve          run a node (embedded NATS server unless --nats-url is given)
  health-check   one table of every node's models; exit 1 when one cannot take traffic or a node drains
  status         each node's models, counters, alerts and persistence
  breaker        open|close|reset MODEL: force a model's breaker
  model          enable|disable MODEL: take a model out of rotation or back
  alert          ack ALERT-ID: acknowledge a firing alert
  drain          --node NAME | --all: stop a node (or every node) taking new requests
  audit          the audit trail from JetStream [--since 1h] [--model M] [--follow]
  events         follow the event stream, one line per event
  dashboard      print the dashboard's URL and check that it answers [--http-url U]
  job            submit|get|watch|list: durable jobs that survive the node that runs them
  version        print the version
  help           show this help, or "hive-node help <command>" for a command's flags

The operator commands connect to nats://127.0.0.1:4222 unless --nats-url
is given, and address every node unless --node is given (drain needs
--node NAME or --all).

Run "hive-node serve --help" for the serve flags.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "hive-node:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitCode is 0 for help, 2 for usage errors, an exitError's own code, and
// 1 otherwise.
func exitCode(err error) int {
	var ue usageError
	var ee exitError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &ee):
		return ee.code
	}
	return 1
}

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve", "start-monitoring":
		return serve(rest, stderr)
	case "health-check":
		return healthCheck(rest, stdout, stderr)
	case "status":
		return status(rest, stdout, stderr)
	case "breaker", "model", "alert":
		return control(cmd, rest, stdout, stderr)
	case "drain":
		return drain(rest, stdout, stderr)
	case "audit":
		return audit(rest, stdout, stderr)
	case "events":
		return events(rest, stdout, stderr)
	case "dashboard":
		return dashboardCmd(rest, stdout, stderr)
	case "job":
		return jobCmd(rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "hive-node %s\n", version)
		return nil
	case "help", "-h", "--help":
		if len(rest) > 0 { // the help asked for goes to stdout, as this one does
			return run([]string{rest[0], "--help"}, stdout, stdout)
		}
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}
