package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/messages"
)

// Timeouts of a run's preparation and end.
const (
	readyTimeout = 30 * time.Second // until every load connection gets an answer
	stopGrace    = 5 * time.Second  // SIGTERM to SIGKILL for the processes the runner started
	clearTimeout = 5 * time.Second  // the final clear of every fault
)

// ErrInterrupted is the error Run returns when its context ended first.
var ErrInterrupted = errors.New("interrupted")

// Options configures Run. The zero value starts the nodes the scenario
// needs with bin/hive-node (or hive-node on PATH).
type Options struct {
	// NATSURL targets a running deployment (comma-separated URLs): no
	// process is started, and kill and restart steps are refused. The
	// deployment's nodes need chaos enabled for fault steps, and the user
	// (HIVE_NATS_USER/HIVE_NATS_PASSWORD, HIVE_NATS_TOKEN, or CredsFile)
	// the permission to publish on the chaos and admin subjects.
	NATSURL   string
	CredsFile string // a NATS .creds file for NATSURL
	// SubjectPrefix is the deployment's subjectPrefix; default the
	// scenario's hive.global.subjectPrefix, else "hive".
	SubjectPrefix string
	HiveNode      string // the hive-node binary; default bin/hive-node, then PATH
	NATSServer    string // the nats-server binary for several nodes; default bin/nats-server, then PATH
	// Out is the directory for the nodes' configurations, data and logs;
	// Run creates it. The report is written there by its caller.
	Out string
	// Progress receives the progress line; nil shows none. Terminal
	// redraws it in place; otherwise a line is written every few seconds.
	Progress io.Writer
	Terminal bool
	// Log receives what the runner does (nodes started, steps applied);
	// nil discards it.
	Log io.Writer
}

// runner is one run of a scenario.
type runner struct {
	sc       *Scenario
	o        Options
	subjects bus.Subjects
	rec      recorder
	wg       sync.WaitGroup // process waiters

	nodes     map[string]*proc // the hive nodes the runner started, by name
	nodeOrder []string
	servers   []*proc
	urls      []string // client URLs of the NATS servers
	ctl       *nats.Conn
	conns     []*nats.Conn
	breakers0 map[string]string
	injected  atomic.Bool // a fault was injected: clear every fault at the end
	hub       *jobHub     // announcements of ended jobs, for a load of jobs
	// calls0 and calls1 are the nodes' model call counters before and
	// after the load.
	calls0, calls1 map[string]nodeCalls
	samples        probeSampler // probe counters around the faults of a model

	logMu sync.Mutex // guards writes to o.Log
}

// Run runs sc and returns its report. It starts what the scenario needs
// (or uses the deployment at o.NATSURL), drives the load, applies the
// timeline, then clears the faults it injected, stops the processes it
// started and evaluates the objectives. When ctx ends first (Ctrl-C), the
// load stops, the same clean-up runs, and the report covers what ran, with
// Interrupted set and ErrInterrupted returned. Any other error means the
// run could not complete: the report then says why (Err) and holds what
// was recorded, when anything was.
func Run(ctx context.Context, sc *Scenario, o Options) (*Report, error) {
	prefix := o.SubjectPrefix
	if prefix == "" && sc.Hive.Config != nil {
		prefix = sc.Hive.Config.Global.SubjectPrefix
	}
	r := &runner{sc: sc, o: o, subjects: bus.NewSubjects(prefix), nodes: map[string]*proc{}}
	r.samples.r = r
	rep := &Report{
		Scenario: sc.Name, File: sc.File, Description: sc.Description, SteadyState: sc.SteadyState,
		Short: sc.IsShort, Load: sc.Load, Target: r.target(),
	}
	if sc.Hive.Config != nil {
		rep.Models = slices.Clone(sc.Hive.Config.Order)
	}
	elapsed, runErr := r.run(ctx)
	r.teardown()
	rep.Started = r.rec.t0
	rep.Nodes = r.nodeNames()
	rep.Recording = r.rec.build(sc, elapsed, r.breakers0)
	rep.Recording.ModelCalls, rep.Recording.ModelCallsCounted, rep.Recording.ModelCallsNote = countCalls(r.calls0, r.calls1)
	rep.Results = Evaluate(sc.Objectives, rep.Recording)
	switch {
	case runErr == nil && ctx.Err() != nil:
		runErr = ErrInterrupted
		fallthrough
	case errors.Is(runErr, ErrInterrupted):
		rep.Interrupted = true
	case runErr != nil:
		rep.Err = runErr.Error()
	}
	return rep, runErr
}

func (r *runner) target() string {
	if r.o.NATSURL != "" {
		return "deployment at " + bus.Redact(r.o.NATSURL)
	}
	if r.sc.Nodes == 1 {
		return "1 hive node (embedded NATS) started by the runner"
	}
	return fmt.Sprintf("%d hive nodes on %d clustered nats-servers started by the runner", r.sc.Nodes, r.sc.Nodes)
}

// run prepares, drives the load and plays the timeline; it returns how
// long the load ran.
func (r *runner) run(ctx context.Context) (time.Duration, error) {
	if err := r.prepare(ctx); err != nil {
		if ctx.Err() != nil {
			return 0, ErrInterrupted
		}
		return 0, err
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	issue, stopIssue := context.WithTimeout(runCtx, r.sc.Load.Duration+time.Second) // the generator stops at Duration itself
	defer stopIssue()
	g := &loadGen{load: r.sc.Load, subjects: r.subjects, conns: r.conns, rec: &r.rec,
		expect: expectations(r.sc.Hive.Config), issue: issue, abandon: runCtx, hub: r.hub}
	r.calls0 = r.modelCalls(ctx)

	r.rec.t0 = time.Now()
	g.runID = strconv.FormatInt(r.rec.t0.UnixNano(), 36)
	r.logf("load started: %s for %s", loadString(r.sc.Load), r.sc.Load.Duration)
	var bg sync.WaitGroup
	bg.Add(2)
	go func() {
		defer bg.Done()
		r.playTimeline(runCtx, func(err error) { cancel(err) })
	}()
	progressDone := make(chan struct{})
	go func() {
		defer bg.Done()
		r.progress(progressDone)
	}()
	g.run()
	elapsed := min(time.Since(r.rec.t0), r.sc.Load.Duration)
	cancel(nil) // ends the timeline: every step is within the load
	close(progressDone)
	bg.Wait()
	r.samples.wg.Wait()
	if r.hub != nil && ctx.Err() == nil {
		r.settleJobs(ctx, r.hub)
	}
	if ctx.Err() == nil {
		r.calls1 = r.modelCalls(ctx)
	}
	if cause := context.Cause(runCtx); cause != nil && !errors.Is(cause, context.Canceled) {
		return elapsed, cause
	}
	if ctx.Err() != nil {
		return elapsed, ErrInterrupted
	}
	return elapsed, nil
}

// prepare starts the processes, connects, checks the deployment and waits
// until every load connection gets answers.
func (r *runner) prepare(ctx context.Context) error {
	if r.o.NATSURL != "" {
		for _, st := range r.sc.Timeline {
			if st.Action == ActKill || st.Action == ActRestart {
				return fmt.Errorf("%s:%d: a %s step needs nodes the runner starts; with --nats-url the deployment's processes are not the runner's (use a kill fault, which the node carries out, or run without --nats-url)", r.sc.File, st.Line, st.Action)
			}
		}
		r.urls = []string{r.o.NATSURL}
	} else if err := r.startDeployment(ctx); err != nil {
		return err
	}
	var err error
	if r.ctl, err = r.connect("chaos control", r.urls[0]); err != nil {
		return err
	}
	sub, err := r.ctl.Subscribe(r.subjects.Events(), r.rec.onEvent(r.subjects))
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", r.subjects.Events(), err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	if r.sc.Load.Kind == LoadJobs {
		r.hub = newJobHub()
		done, err := r.ctl.Subscribe(r.subjects.JobsDone("*"), r.hub.onDone)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", r.subjects.JobsDone("*"), err)
		}
		_ = done.SetPendingLimits(-1, -1)
	}
	if err := r.ctl.Flush(); err != nil {
		return fmt.Errorf("subscribe %s: %w", r.subjects.Events(), err)
	}
	if err := r.checkDeployment(ctx); err != nil {
		return err
	}
	n := r.sc.Load.Connections
	if n == 0 {
		n = len(r.urls)
	}
	for i := range n {
		nc, err := r.connect(fmt.Sprintf("chaos load %d", i+1), r.urls[i%len(r.urls)])
		if err != nil {
			return err
		}
		r.conns = append(r.conns, nc)
	}
	return r.waitServing(ctx)
}

func (r *runner) connect(name, url string) (*nats.Conn, error) {
	o := bus.ConnectOptions{URLs: url, Name: name, CredsFile: r.o.CredsFile}
	if r.o.NATSURL != "" {
		o.FromEnv()
	}
	return bus.Connect(o)
}

// checkDeployment asks every node for its status: the nodes and models are
// there, the breakers' starting states are known, and chaos answers when
// the timeline needs it.
func (r *runner) checkDeployment(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	replies, err := bus.AdminRequest(cctx, r.ctl, r.subjects, "all", bus.CmdStatus, nil, gatherStall)
	if err != nil {
		return fmt.Errorf("status of the nodes: %w", err)
	}
	r.breakers0 = map[string]string{}
	nodes, models := map[string]bool{}, map[string]bool{}
	for _, rep := range replies {
		st := rep.GetStatus()
		if st == nil {
			continue
		}
		nodes[st.GetNode()] = true
		for _, m := range st.GetModels() {
			models[m.GetName()] = true
			r.breakers0[st.GetNode()+"/"+m.GetName()] = m.GetBreaker().String()
		}
	}
	if r.o.NATSURL != "" {
		r.nodeOrder = sortedKeys(nodes)
	}
	for _, m := range r.sc.Load.Mix {
		if !models[m.Model] {
			return fmt.Errorf("no node serves model %s of load.mix (the nodes serve %s)", m.Model, strings.Join(sortedKeys(models), ", "))
		}
	}
	if l := r.sc.Load; l.Kind == LoadJobs || l.IdempotencyKeys {
		for _, rep := range replies {
			if st := rep.GetStatus(); st != nil && !st.GetPersistence() {
				return fmt.Errorf("node %s has no persistence (%s): jobs and idempotency keys need JetStream", st.GetNode(), st.GetPersistenceDetail())
			}
		}
	}
	needChaos := false
	for _, st := range r.sc.Timeline {
		if st.Node != "all" && !nodes[st.Node] && st.Action != ActRestart {
			return fmt.Errorf("%s:%d: node %s is not in the deployment (its nodes: %s)", r.sc.File, st.Line, st.Node, strings.Join(sortedKeys(nodes), ", "))
		}
		needChaos = needChaos || st.Action == ActFault || st.Action == ActClear
	}
	if !needChaos {
		return nil
	}
	// A clear of a fault that is not there changes nothing and proves the
	// chaos subjects answer.
	acks, err := bus.ChaosRequest(cctx, r.ctl, r.subjects, "all", true, &messages.FaultSpec{Id: "chaos-preflight"}, gatherStall)
	if errors.Is(err, bus.ErrNoNodes) {
		return fmt.Errorf("no node answered on %s: chaos is off on every node (set chaos: {enabled: true} in resilience.yml) or this user may not publish on the chaos subjects", r.subjects.ChaosClear("all"))
	}
	if err != nil {
		return err
	}
	if len(acks) < len(nodes) {
		var answered []string
		for _, a := range acks {
			answered = append(answered, a.GetNode())
		}
		return fmt.Errorf("only %s of the nodes %s answered on the chaos subjects: enable chaos on every node", strings.Join(answered, ", "), strings.Join(sortedKeys(nodes), ", "))
	}
	return nil
}

// waitServing sends each load connection's first request for every model
// of the mix until a node answers: in a cluster, a node's subscription
// takes a moment to reach the other servers, and no event says when.
func (r *runner) waitServing(ctx context.Context) error {
	deadline := time.Now().Add(readyTimeout)
	for i, nc := range r.conns {
		for _, m := range r.sc.Load.Mix {
			req := &messages.InferRequest{RequestId: fmt.Sprintf("chaos-ready-%d-%s", i, m.Model), Model: m.Model,
				Messages: []*messages.ChatMessage{{Role: "user", Content: "ready?"}}}
			body, err := bus.Encode(bus.Protobuf, req)
			if err != nil {
				return err
			}
			for {
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				msg := nats.NewMsg(r.subjects.Infer())
				msg.Header.Set(bus.ContentTypeHeader, bus.Protobuf.ContentType())
				msg.Data = body
				_, err := nc.RequestMsgWithContext(rctx, msg)
				cancel()
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("no node answered %s requests for %s within %s: %w", r.subjects.Infer(), m.Model, readyTimeout, err)
				}
				select { // polling: interest reaching a server emits no event
				case <-time.After(50 * time.Millisecond):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
	}
	if r.sc.Load.Kind != LoadJobs {
		return nil
	}
	// The jobs subjects are subscribed after the infer endpoint: a read of
	// a job that does not exist proves they answer.
	for _, nc := range r.conns {
		for {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := bus.GetJob(rctx, nc, r.subjects, "chaos-ready", 0)
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("no node answered %s within %s: %w", r.subjects.JobsGet(), readyTimeout, err)
			}
			select { // polling, as above
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// teardown clears the faults the run injected, closes the connections and
// stops the processes the runner started.
func (r *runner) teardown() {
	if r.ctl != nil && r.injected.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), clearTimeout)
		sent := time.Now()
		acks, err := bus.ChaosRequest(ctx, r.ctl, r.subjects, r.address("all"), true, nil, gatherStall)
		cancel()
		if err != nil {
			r.logf("clearing the faults: %v", err)
		} else {
			r.logf("faults cleared on %d node(s)", len(acks))
			// Each node announces its clear on the events after its
			// answer: wait for them, so that the recording has them.
			cleared := func(e Event) bool { return e.Kind == "admin" && e.Detail == bus.CmdChaosClear }
			if !r.rec.awaitEvents(sent, len(acks), cleared, time.After(clearTimeout)) {
				r.logf("not every node's clear event arrived within %s", clearTimeout)
			}
		}
	}
	for _, nc := range r.conns {
		nc.Close()
	}
	if r.ctl != nil {
		r.ctl.Close()
	}
	var wg sync.WaitGroup
	for _, p := range r.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop(stopGrace)
		}()
	}
	wg.Wait()
	for _, p := range r.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop(stopGrace)
		}()
	}
	wg.Wait()
	r.wg.Wait()
}

// node returns the process of a node the runner started.
func (r *runner) node(name string) (*proc, error) {
	p, ok := r.nodes[name]
	if !ok {
		return nil, fmt.Errorf("node %s was not started by the runner", name)
	}
	return p, nil
}

// running counts the started nodes that are up.
func (r *runner) running() int {
	n := 0
	for _, p := range r.nodes {
		if p.running() {
			n++
		}
	}
	return n
}

func (r *runner) nodeNames() []string {
	return slices.Clone(r.nodeOrder)
}

func (r *runner) logf(format string, args ...any) {
	if r.o.Log == nil {
		return
	}
	r.logMu.Lock()
	defer r.logMu.Unlock()
	if r.o.Terminal && r.o.Progress != nil {
		fmt.Fprint(r.o.Log, "\r\033[K") // over the progress line, which redraws itself
	}
	fmt.Fprintf(r.o.Log, "chaos: "+format+"\n", args...)
}
