package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/messages"
)

// The operator commands talk NATS to a running deployment, as `nats` does.

// ctlFlags are the flags of every operator command.
type ctlFlags struct {
	natsFlags
	node    string
	timeout time.Duration
	stall   time.Duration
}

// newCtlFlags returns a flag set with the connection flags and --node;
// usage is the command's usage text. The commands that ask the admin
// subjects add --timeout and --gather with askFlags.
func newCtlFlags(name, usage string, stderr io.Writer) (*flag.FlagSet, *ctlFlags) {
	f := &ctlFlags{timeout: 5 * time.Second, stall: 300 * time.Millisecond}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.natsFlags.register(fs, "nats://127.0.0.1:4222", "NATS server URL(s) of the deployment, comma-separated")
	fs.StringVar(&f.prefix, "subject-prefix", bus.DefaultPrefix, "subject prefix of the deployment (subjectPrefix in resilience.yml)")
	fs.StringVar(&f.node, "node", "all", `node to address, or "all"`)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage+"\n\n"+envHelp+"\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs, f
}

// askFlags adds the flags of a command that asks the admin subjects.
func (f *ctlFlags) askFlags(fs *flag.FlagSet) {
	fs.DurationVar(&f.timeout, "timeout", f.timeout, "how long to wait for the first answer")
	fs.DurationVar(&f.stall, "gather", f.stall, "with --node all: stop gathering answers after this long without a new one")
}

// parseCtl parses args and checks the number of positional arguments
// (any number when want < 0).
func parseCtl(fs *flag.FlagSet, args []string, want int, what string) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil, err
		}
		return nil, usageError{err.Error()}
	}
	// Flags may also follow the arguments: hive-node breaker open gpt-5 --node a.
	var pos []string
	rest := fs.Args()
	for len(rest) > 0 {
		pos = append(pos, rest[0])
		if err := fs.Parse(rest[1:]); err != nil {
			if err == flag.ErrHelp {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		rest = fs.Args()
	}
	if want >= 0 && len(pos) != want {
		return nil, usageError{fmt.Sprintf("%s: want %s, got %q", fs.Name(), what, strings.Join(pos, " "))}
	}
	return pos, nil
}

func (f *ctlFlags) connect(stderr io.Writer) (*nats.Conn, error) {
	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true}).Level(zerolog.ErrorLevel)
	nc, err := bus.Connect(f.options("hive-node cli", log))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS (%s): %w", bus.Redact(f.natsURL), err)
	}
	return nc, nil
}

// ask sends one admin command and returns the replies of the addressed nodes.
func (f *ctlFlags) ask(command string, cmd *messages.AdminCommand, stderr io.Writer) ([]*messages.AdminReply, error) {
	if err := bus.ValidPrefix(f.prefix); err != nil {
		return nil, usageError{fmt.Sprintf("--subject-prefix: %v", err)}
	}
	nc, err := f.connect(stderr)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	if cmd != nil && cmd.Actor == "" {
		cmd.Actor = whoAmI()
	}
	return bus.AdminRequest(ctx, nc, bus.NewSubjects(f.prefix), f.node, command, cmd, f.stall)
}

// whoAmI names the operator for the audit trail: the NATS user when one is
// set, else the local user.
func whoAmI() string {
	if u := os.Getenv(bus.EnvUser); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}

// exitError ends a command with a message and an exit code.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// sortReplies orders replies by node name, for stable output.
func sortReplies(rs []*messages.AdminReply) {
	slices.SortFunc(rs, func(a, b *messages.AdminReply) int { return strings.Compare(a.GetNode(), b.GetNode()) })
}

const healthCheckUsage = `Usage: hive-node health-check [flags]

Asks every node (or --node) for its models' state, prints one table, then
one line for each node or model that cannot take traffic, saying why.
Exits 0 when every model of every node can take traffic; 1 when one
cannot (its breaker refuses traffic: open, forced_open or half_open; it is
disabled; its supervisor gave up on it; its health is unavailable), when
a node drains, or when a node refused; 3 when no node answered.`

func healthCheck(args []string, stdout, stderr io.Writer) error {
	fs, f := newCtlFlags("health-check", healthCheckUsage, stderr)
	f.askFlags(fs)
	if _, err := parseCtl(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	replies, err := f.ask(bus.CmdStatus, nil, stderr)
	if errors.Is(err, bus.ErrNoNodes) {
		return exitError{3, err.Error()}
	}
	if err != nil {
		return err
	}
	sortReplies(replies)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tMODEL\tBREAKER\tOPENED-BY\tHEALTH\tRAMP\tIN-FLIGHT\tENABLED\tREQUESTS\tFAILURES")
	var models, down, draining, refused int
	var why []string
	for _, r := range replies {
		if !r.GetOk() {
			refused++
			why = append(why, fmt.Sprintf("%s: refused the status command: %s", r.GetNode(), r.GetError().GetMessage()))
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t-\t%s\n", r.GetNode(), r.GetError().GetMessage())
			continue
		}
		st := r.GetStatus()
		if st.GetDraining() {
			draining++
			why = append(why, st.GetNode()+": draining: it takes no new requests (restart it to undo)")
		}
		for _, m := range st.GetModels() {
			models++
			if reasons := cannotServe(m); len(reasons) > 0 {
				down++
				why = append(why, st.GetNode()+"/"+m.GetName()+": "+strings.Join(reasons, "; "))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d%%\t%d/%d\t%s\t%d\t%d\n", st.GetNode(), m.GetName(), m.GetBreaker(), openedBy(m), m.GetHealth(),
				m.GetRampPercent(), m.GetInFlight(), m.GetMaxConcurrent(), yesNo(m.GetEnabled()), m.GetRequests(), m.GetFailures())
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%d node(s), %d model(s): %d cannot take traffic, %d node(s) draining\n", len(replies), models, down, draining)
	for _, w := range why {
		fmt.Fprintln(stdout, "  "+w)
	}
	if down == 0 && draining == 0 && refused == 0 {
		return nil
	}
	var parts []string
	if down > 0 {
		parts = append(parts, fmt.Sprintf("%d model(s) cannot take traffic", down))
	}
	if draining > 0 {
		parts = append(parts, fmt.Sprintf("%d node(s) draining", draining))
	}
	if refused > 0 {
		parts = append(parts, fmt.Sprintf("%d node(s) refused the status command", refused))
	}
	return exitError{1, strings.Join(parts, ", ")}
}

// cannotServe says why model m cannot take traffic, or nothing when it can.
func cannotServe(m *messages.ModelStatus) []string {
	var why []string
	switch {
	case m.GetGaveUp():
		why = append(why, "its supervisor gave up on it after repeated crashes (hive-node model enable "+m.GetName()+" starts it again)")
	case m.GetBreaker().Refuses():
		why = append(why, "breaker "+m.GetBreaker().String())
	}
	if !m.GetEnabled() && !m.GetGaveUp() {
		why = append(why, "disabled by an operator")
	}
	if m.GetHealth() == messages.HealthStatus_unavailable && !m.GetGaveUp() {
		why = append(why, "health unavailable")
	}
	return why
}

// openedBy says whose evidence put a model's breaker in its state: "-"
// while closed, the node itself ("local"), or "<peer> (adopted)".
func openedBy(m *messages.ModelStatus) string {
	switch {
	case m.GetBreakerOrigin() == "":
		return "-"
	case m.GetBreakerAdopted():
		return m.GetBreakerOrigin() + " (adopted)"
	}
	return "local"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

const statusUsage = `Usage: hive-node status [flags]

Prints each node's status: version, uptime, draining, persistence, every
model (breaker, health, ramp, in-flight, counters) and the firing alerts.`

func status(args []string, stdout, stderr io.Writer) error {
	fs, f := newCtlFlags("status", statusUsage, stderr)
	f.askFlags(fs)
	asJSON := fs.Bool("json", false, "print the AdminReply of each node as JSON, one per line")
	if _, err := parseCtl(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	replies, err := f.ask(bus.CmdStatus, nil, stderr)
	if err != nil {
		return err
	}
	sortReplies(replies)
	if *asJSON {
		for _, r := range replies {
			b, err := protojson.Marshal(r)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, string(b))
		}
		return nil
	}
	for i, r := range replies {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		if !r.GetOk() {
			fmt.Fprintf(stdout, "node %s: error %s\n", r.GetNode(), r.GetError().GetMessage())
			continue
		}
		printStatus(stdout, r.GetStatus())
	}
	return nil
}

func printStatus(w io.Writer, st *messages.NodeStatus) {
	up := ""
	if t := st.GetStarted(); t != nil {
		up = ", up " + time.Since(t.AsTime()).Round(time.Second).String()
	}
	fmt.Fprintf(w, "node %s (version %s%s)\n", st.GetNode(), st.GetVersion(), up)
	persistence := "off"
	if st.GetPersistence() {
		persistence = "on"
	}
	if d := st.GetPersistenceDetail(); d != "" {
		persistence += " (" + d + ")"
	}
	fmt.Fprintf(w, "  draining: %s, persistence: %s\n", yesNo(st.GetDraining()), persistence)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  MODEL\tPROVIDER\tBREAKER\tHEALTH\tRAMP\tIN-FLIGHT\tENABLED\tREQUESTS\tSUCCESSES\tFAILURES\tFALLBACKS")
	for _, m := range st.GetModels() {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d%%\t%d/%d\t%s\t%d\t%d\t%d\t%s\n", m.GetName(), m.GetProvider(), m.GetBreaker(), m.GetHealth(),
			m.GetRampPercent(), m.GetInFlight(), m.GetMaxConcurrent(), yesNo(m.GetEnabled()), m.GetRequests(), m.GetSuccesses(),
			m.GetFailures(), strings.Join(m.GetFallbacks(), ","))
	}
	_ = tw.Flush()
	if len(st.GetAlerts()) == 0 {
		fmt.Fprintln(w, "  alerts: none firing")
		return
	}
	fmt.Fprintln(w, "  alerts:")
	for _, a := range st.GetAlerts() {
		fmt.Fprintf(w, "    %s  %s %s %s: %s\n", a.GetId(), a.GetSeverity(), a.GetRule(), a.GetState(), a.GetMessage())
	}
}

const breakerUsage = `Usage: hive-node breaker open|close|reset MODEL [flags]

open forces the model's breaker open (all traffic goes to its fallbacks),
for --duration or until closed; close closes it (traffic ramps back);
reset clears its evidence and closes it. Every node (or --node) applies it.`

const modelUsage = `Usage: hive-node model enable|disable MODEL [flags]

disable takes the model out of rotation (health: maintenance); enable puts
it back. Every node (or --node) applies it.`

const alertUsage = `Usage: hive-node alert ack ALERT-ID [flags]

Acknowledges a firing alert: it stops escalating and shows who took it.`

const drainUsage = `Usage: hive-node drain --node NAME | --all [flags]

Stops the node NAME, or with --all every node of the deployment, taking
new requests: a drained node leaves the infer queue group (other nodes
get its NATS traffic), finishes what it had, and answers HTTP requests
with no_capacity (draining) while /readyz says not ready. Restart the
node to undo. One of --node and --all is required.`

// verb is one verb of an operator command and the admin command it sends.
type verb struct{ name, command string }

// controlVerbs are the verbs of breaker, model and alert, in usage order.
var controlVerbs = map[string][]verb{
	"breaker": {{"open", bus.CmdBreakerOpen}, {"close", bus.CmdBreakerClose}, {"reset", bus.CmdBreakerReset}},
	"model":   {{"enable", bus.CmdModelEnable}, {"disable", bus.CmdModelDisable}},
	"alert":   {{"ack", bus.CmdAlertAck}},
}

// control runs breaker, model and alert: `name verb NAME [flags]`. Each
// takes the flags it uses and no other: --reason for breaker and model
// (alert acks record who, not why), --duration for breaker open.
func control(name string, args []string, stdout, stderr io.Writer) error {
	usage := map[string]string{"breaker": breakerUsage, "model": modelUsage, "alert": alertUsage}[name]
	verbs := controlVerbs[name]
	fs, f := newCtlFlags(name, usage, stderr)
	f.askFlags(fs)
	var reason *string
	var duration *time.Duration
	if name != "alert" {
		reason = fs.String("reason", "", "why, for the audit trail")
	}
	if name == "breaker" {
		duration = fs.Duration("duration", 0, "breaker open: how long to hold it open (0: until closed)")
	}
	pos, err := parseCtl(fs, args, -1, "")
	if err != nil {
		return err
	}
	names := make([]string, len(verbs))
	for i, v := range verbs {
		names[i] = v.name
	}
	object := map[string]string{"breaker": "MODEL", "model": "MODEL", "alert": "ALERT-ID"}[name]
	if len(pos) == 0 {
		return usageError{fmt.Sprintf("%s: missing the verb: %s (hive-node help %s)", name, orList(names), name)}
	}
	i := slices.IndexFunc(verbs, func(v verb) bool { return v.name == pos[0] })
	if i < 0 {
		return usageError{fmt.Sprintf("%s: unknown verb %q: %s", name, pos[0], orList(names))}
	}
	switch {
	case len(pos) == 1:
		return usageError{fmt.Sprintf("%s %s: missing %s", name, pos[0], object)}
	case len(pos) > 2:
		return usageError{fmt.Sprintf("%s %s: want one %s, got %q", name, pos[0], object, strings.Join(pos[1:], " "))}
	case duration != nil && *duration != 0 && pos[0] != "open":
		return usageError{fmt.Sprintf("%s %s: --duration applies to breaker open only", name, pos[0])}
	}
	cmd := &messages.AdminCommand{}
	if name == "alert" {
		cmd.AlertId = pos[1]
	} else {
		cmd.Model = pos[1]
		cmd.Reason = *reason
	}
	if duration != nil {
		cmd.DurationMs = messages.Millis(*duration)
	}
	return sendControl(f, name, verbs[i].command, cmd, stdout, stderr)
}

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// drain runs `hive-node drain --node NAME | --all`. Draining every node
// stops the deployment serving, so it is never the default: the node, or
// --all, must be named.
func drain(args []string, stdout, stderr io.Writer) error {
	fs, f := newCtlFlags("drain", drainUsage, stderr)
	f.askFlags(fs)
	// --node has no default here: a drain names its node.
	node := fs.Lookup("node")
	node.DefValue, node.Usage = "", `node to drain (or --all)`
	f.node = ""
	all := fs.Bool("all", false, "drain every node of the deployment")
	reason := fs.String("reason", "", "why, for the audit trail")
	if _, err := parseCtl(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	switch {
	case *all && f.node != "" && f.node != "all":
		return usageError{fmt.Sprintf("drain: --all and --node %s: give one of them", f.node)}
	case *all:
		f.node = "all"
	case f.node == "":
		return usageError{"drain: name the node to drain with --node NAME, or drain every node with --all"}
	}
	return sendControl(f, "drain", bus.CmdDrain, &messages.AdminCommand{Reason: *reason}, stdout, stderr)
}

// sendControl sends an operator's admin command and prints each node's
// answer; any refusal exits 1.
func sendControl(f *ctlFlags, name, command string, cmd *messages.AdminCommand, stdout, stderr io.Writer) error {
	replies, err := f.ask(command, cmd, stderr)
	if err != nil {
		return err
	}
	sortReplies(replies)
	if name == "alert" && slices.ContainsFunc(replies, (*messages.AdminReply).GetOk) {
		// An alert lives on one node; the others do not know it.
		replies = slices.DeleteFunc(replies, func(r *messages.AdminReply) bool { return r.GetError().GetCode() == "not_found" })
	}
	failed := 0
	for _, r := range replies {
		if r.GetOk() {
			fmt.Fprintf(stdout, "%s: %s\n", r.GetNode(), r.GetMessage())
			continue
		}
		failed++
		fmt.Fprintf(stdout, "%s: refused: %s (%s)\n", r.GetNode(), r.GetError().GetMessage(), r.GetError().GetCode())
	}
	if failed > 0 {
		return exitError{1, fmt.Sprintf("%d of %d node(s) refused", failed, len(replies))}
	}
	return nil
}
