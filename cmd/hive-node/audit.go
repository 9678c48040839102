package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/persistence"
)

const auditUsage = `Usage: hive-node audit [--since 1h] [--model M] [--node N] [--follow] [flags]

Prints the audit trail kept in JetStream: every health change, breaker
transition, recovery step, alert and operator command, one line each, oldest
first. --follow keeps printing new events until interrupted.`

func audit(args []string, stdout, stderr io.Writer) error {
	fs, f := newCtlFlags("audit", auditUsage, stderr)
	since := fs.Duration("since", 0, "only events of this last period, such as 1h (0: all)")
	model := fs.String("model", "", "only this model's events")
	follow := fs.Bool("follow", false, "keep printing new events until interrupted")
	if _, err := parseCtl(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	if *since < 0 {
		return usageError{"--since: must not be negative"}
	}
	q := persistence.Query{Since: *since, Model: *model, Follow: *follow}
	if f.node != "all" {
		q.Node = f.node
	}
	nc, err := f.connect(stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n := 0
	err = persistence.ReadAudit(ctx, nc, bus.NewSubjects(f.prefix), q, func(e persistence.Entry) error {
		n++
		_, err := fmt.Fprintln(stdout, persistence.FormatEntry(e))
		return err
	})
	if *follow && errors.Is(err, context.Canceled) {
		return nil
	}
	if err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintln(stderr, "no events in the audit trail match")
	}
	return nil
}

const eventsUsage = `Usage: hive-node events [--model M] [--node N] [flags]

Follows the live event stream (hive.v1.events.>) of every node, one line per
event, until interrupted. Unlike audit it needs no JetStream.`

func events(args []string, stdout, stderr io.Writer) error {
	fs, f := newCtlFlags("events", eventsUsage, stderr)
	model := fs.String("model", "", "only this model's events")
	if _, err := parseCtl(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	nc, err := f.connect(stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	watchConnection(nc, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	q := persistence.Query{Model: *model}
	if f.node != "all" {
		q.Node = f.node
	}
	err = persistence.FollowEvents(ctx, nc, bus.NewSubjects(f.prefix), q, func(e persistence.Entry) error {
		_, err := fmt.Fprintln(stdout, persistence.FormatEntry(e))
		return err
	})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// watchConnection says on w when the connection to NATS is lost and when
// it is back, for a command that follows live events: what is published
// while it is away never reaches it.
func watchConnection(nc *nats.Conn, w io.Writer) {
	var lost atomic.Int64 // unix nanoseconds of the loss, 0 while connected
	nc.SetDisconnectErrHandler(func(c *nats.Conn, err error) {
		if c.IsClosed() {
			return
		}
		lost.Store(time.Now().UnixNano())
		why := ""
		if err != nil {
			why = " (" + bus.Redact(err.Error()) + ")"
		}
		fmt.Fprintf(w, "hive-node events: lost the connection to NATS%s; reconnecting. Events published meanwhile are not shown here: hive-node audit --since reads them from JetStream\n", why)
	})
	nc.SetReconnectHandler(func(c *nats.Conn) {
		away := ""
		if t := lost.Swap(0); t > 0 {
			away = fmt.Sprintf(" after %s", time.Since(time.Unix(0, t)).Round(time.Millisecond))
		}
		fmt.Fprintf(w, "hive-node events: reconnected to %s%s; following again\n", bus.Redact(c.ConnectedUrl()), away)
	})
}
