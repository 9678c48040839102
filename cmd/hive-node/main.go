// Command hive-node runs a Hive resilience node: model actors, the router,
// the NATS request endpoint and the HTTP endpoints, on an embedded NATS
// server or an existing NATS deployment.
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
  serve     run a node (embedded NATS server unless --nats-url is given)
  version   print the version
  help      show this help, or "hive-node help <command>" for a command's flags

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

// exitCode is 0 for help, 2 for usage errors and 1 otherwise.
func exitCode(err error) int {
	var ue usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		return 2
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
	case "version", "--version":
		fmt.Fprintf(stdout, "hive-node %s\n", version)
		return nil
	case "help", "-h", "--help":
		if len(rest) > 0 {
			return run([]string{rest[0], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}
