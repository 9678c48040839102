package actors

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/observe"
	"github.com/cmmv-hive/resilience/resilience"
)

// Alerts. The alerts actor evaluates the alert rules once per Interval and
// publishes each firing, escalation, acknowledgement and resolve once. It
// gets no message per request: on every tick it asks each model actor for
// the counts it kept since the last question (one message each way per
// model and interval), keeps them in windows sized by each rule's Window,
// and hears from the supervisor when it gives a model up.

// Alerts configures the alerts actor (see observe.Alerts, where the rules
// and their defaults are). Its zero value is off.
type Alerts = observe.Alerts

// AlertRules holds one AlertRule per rule (see observe.Rules).
type AlertRules = observe.Rules

// AlertRule is one rule's settings (see observe.Rule).
type AlertRule = observe.Rule

// Alerts actor messages.
type (
	// alertTargets gives the alerts actor the model actors and the router
	// to ask.
	alertTargets struct {
		models map[string]*actor.PID
		router *actor.PID
	}
	// alertTick is the alerts actor's timer.
	alertTick struct{}
	// alertQuery asks a model actor for its alertReport.
	alertQuery struct{ round uint64 }
	// alertReport is what a model counted since the last alertQuery; the
	// router's report (model nodeReport) counts the node's requests.
	alertReport struct {
		round   uint64
		model   string
		sample  resilience.AlertSample
		peak    int // most failed calls in a row since the last report
		breaker messages.BreakerState
	}
	// modelGaveUp is the supervisor telling the alerts actor it stopped
	// restarting a model.
	modelGaveUp struct {
		model   string
		crashes int
		detail  string
	}
	// ackAlert is an operator acknowledging a firing alert.
	ackAlert struct{ id, actor string }
	ackDone  struct {
		alert *messages.Alert
		err   error
	}
	// firingQuery asks for the firing alerts.
	firingQuery struct{}
)

// A question to a given-up model, or a tick after the actor stopped, is
// expected to be lost: not worth a dead-letter log line.
func (*alertQuery) IgnoreDeadLetterLogging() {}
func (*alertTick) IgnoreDeadLetterLogging()  {}

// alertCounts is what a model counts for the alert rules between two
// questions: a few additions per call. They live in modelCounts, so a
// restart keeps them.
type alertCounts struct {
	sample      resilience.AlertSample
	consecutive int
	peak        int
}

// observe counts a call's outcome; outcomes that are no evidence about
// the model (Outcome.Counts) are ignored, as health does.
func (c *alertCounts) observe(o resilience.Outcome) {
	switch {
	case o.Success():
		c.sample.Calls++
		c.sample.Latency += o.Latency
		c.consecutive = 0
	case o.Counts():
		c.sample.Calls++
		c.sample.Failures++
		c.consecutive++
		c.peak = max(c.peak, c.consecutive)
	}
}

// probe notes a probe's outcome: a success shows the model answers again.
func (c *alertCounts) probe(o resilience.Outcome) {
	if o.Success() {
		c.consecutive = 0
	}
}

// alertReport answers the alerts actor and starts counting anew.
func (m *model) alertReport(q *alertQuery) *alertReport {
	c := &m.counts.alert
	r := &alertReport{round: q.round, model: m.spec.Name, sample: c.sample, peak: max(c.peak, c.consecutive), breaker: m.breaker.State()}
	*c = alertCounts{consecutive: c.consecutive, peak: c.consecutive}
	return r
}

// alertRule is an enabled rule with its settings.
type alertRule struct {
	name    string
	cfg     AlertRule
	machine resilience.AlertConfig
}

type alertKey struct{ rule, model string }

// alertInstance is one rule for one model ("" for the node): its state
// machine and what the last evaluation and transition said.
type alertInstance struct {
	rule    *alertRule
	model   string
	m       *resilience.Alert
	id      string
	state   messages.Alert_State
	sev     messages.Alert_Severity
	actor   string    // who acknowledged
	since   time.Time // of the last transition
	value   float64
	message string
}

// alerter is the alerts actor.
type alerter struct {
	env    *env
	cfg    Alerts
	log    zerolog.Logger
	rules  []*alertRule
	byName map[string]*alertRule

	models   map[string]*actor.PID
	router   *actor.PID              // asked for the node's request counts
	names    []string                // model names, sorted
	reports  map[string]*alertReport // the last of each model
	gaveUp   map[string]*modelGaveUp
	windows  map[alertKey]*resilience.AlertWindow
	alerts   map[alertKey]*alertInstance
	order    []*alertInstance // alerts, in creation order
	round    uint64
	awaiting map[string]bool // models whose report of this round is missing
	timer    *time.Timer
}

func newAlerter(e *env) *alerter {
	a := &alerter{env: e, cfg: e.cfg.Alerts, log: e.log.With().Str("component", "alerts").Logger(),
		byName: make(map[string]*alertRule), reports: make(map[string]*alertReport), gaveUp: make(map[string]*modelGaveUp),
		windows: make(map[alertKey]*resilience.AlertWindow), alerts: make(map[alertKey]*alertInstance), awaiting: make(map[string]bool)}
	for _, nr := range a.cfg.Rules.Named() {
		if !nr.Rule.Enabled {
			continue
		}
		r := &alertRule{name: nr.Name, cfg: *nr.Rule, machine: nr.Rule.Machine(nr, e.cfg.Supervision.MaxRestarts)}
		a.rules = append(a.rules, r)
		a.byName[r.name] = r
	}
	return a
}

func (a *alerter) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.arm(ctx)
	case *alertTargets:
		a.models, a.router = msg.models, msg.router
		a.names = slices.Sorted(maps.Keys(msg.models))
	case *alertTick:
		a.tick(ctx)
	case *alertReport:
		a.report(msg)
	case *modelGaveUp:
		a.gaveUp[msg.model] = msg
		delete(a.awaiting, msg.model)
		a.judgeGaveUp(a.env.now(), msg.model)
	case *ackAlert:
		ctx.Respond(a.ack(msg))
	case *firingQuery:
		ctx.Respond(a.firing())
	case *actor.Stopping, *actor.Restarting:
		if a.timer != nil {
			a.timer.Stop()
		}
	}
}

func (a *alerter) arm(ctx actor.Context) {
	self, root := ctx.Self(), ctx.ActorSystem().Root
	a.timer = time.AfterFunc(a.cfg.Interval, func() { root.Send(self, &alertTick{}) })
}

// tick escalates what is due, judges the node-wide rules if the last round
// of reports is incomplete, and asks every model for a new report. A
// given-up model is asked too, so the alert resolves if it runs again, but
// the round does not wait for it.
func (a *alerter) tick(ctx actor.Context) {
	now := a.env.now()
	if len(a.awaiting) > 0 {
		a.judgeNode(now)
	}
	for _, inst := range a.order {
		if inst.m.Firing() {
			a.transition(now, inst, inst.m.Tick(now))
		}
	}
	for _, name := range a.names {
		if _, down := a.gaveUp[name]; down {
			a.judgeGaveUp(now, name)
		}
	}
	a.round++
	clear(a.awaiting)
	if a.router != nil {
		ctx.Request(a.router, &alertQuery{round: a.round})
		a.awaiting[nodeReport] = true
	}
	for _, name := range a.names {
		ctx.Request(a.models[name], &alertQuery{round: a.round})
		if _, down := a.gaveUp[name]; !down {
			a.awaiting[name] = true
		}
	}
	if len(a.awaiting) == 0 {
		a.judgeNode(now)
	}
	a.arm(ctx)
}

// report takes in one model's counts and judges its rules; the last report
// of a round judges the node-wide ones.
func (a *alerter) report(r *alertReport) {
	now := a.env.now()
	if r.model == nodeReport {
		if rule := a.byName[observe.RuleLowSuccessRate]; rule != nil {
			a.add(now, rule, "", r.sample)
		}
		a.reported(now, r)
		return
	}
	a.reports[r.model] = r
	if _, down := a.gaveUp[r.model]; down {
		delete(a.gaveUp, r.model)
		a.judgeGaveUp(now, r.model)
	}
	for _, rule := range a.rules {
		switch rule.name {
		case observe.RuleModelUnavailable:
			msg := fmt.Sprintf("%s failed %d calls in a row", r.model, r.peak)
			switch r.peak {
			case 0:
				msg = r.model + " answers again"
			case 1:
				msg = r.model + " failed its last call"
			}
			a.judge(now, rule, r.model, float64(r.peak), true, msg)
		case observe.RuleHighFailureRate:
			s := a.add(now, rule, r.model, r.sample)
			a.judge(now, rule, r.model, s.FailureRate(), s.Calls >= int64(rule.cfg.MinCalls),
				fmt.Sprintf("%s failed %.1f%% of %d calls over %v", r.model, 100*s.FailureRate(), s.Calls, rule.cfg.Window))
		case observe.RuleSlowResponses:
			s := a.add(now, rule, r.model, r.sample)
			avg := s.LatencyAvg()
			a.judge(now, rule, r.model, avg.Seconds(), s.Successes() >= int64(rule.cfg.MinCalls),
				fmt.Sprintf("%s answered in %v on average over %d calls in %v", r.model, avg.Round(time.Millisecond), s.Successes(), rule.cfg.Window))
		}
	}
	a.reported(now, r)
}

// nodeReport is the model name of the router's report: the node's requests.
const nodeReport = ""

// reported notes r's report of the round; the last one judges the
// node-wide rules.
func (a *alerter) reported(now time.Time, r *alertReport) {
	if r.round == a.round && a.awaiting[r.model] {
		delete(a.awaiting, r.model)
		if len(a.awaiting) == 0 {
			a.judgeNode(now)
		}
	}
}

// add counts s in the rule's window for model and returns the window's sum.
func (a *alerter) add(now time.Time, rule *alertRule, model string, s resilience.AlertSample) resilience.AlertSample {
	w := a.window(rule, model)
	w.Add(now, s)
	return w.Sum(now)
}

// window is the rule's window for model ("" for the node).
func (a *alerter) window(rule *alertRule, model string) *resilience.AlertWindow {
	k := alertKey{rule.name, model}
	w, ok := a.windows[k]
	if !ok {
		w = resilience.NewAlertWindow(rule.cfg.Window)
		a.windows[k] = w
	}
	return w
}

// judgeNode judges the node-wide rules on the models' last reports.
func (a *alerter) judgeNode(now time.Time) {
	if rule := a.byName[observe.RuleLowSuccessRate]; rule != nil {
		s := a.window(rule, "").Sum(now)
		rate := 1.0
		if s.Calls > 0 {
			rate = float64(s.Successes()) / float64(s.Calls)
		}
		a.judge(now, rule, "", rate, s.Calls >= int64(rule.cfg.MinCalls),
			fmt.Sprintf("%s answered %.1f%% of %d requests over %v", a.env.cfg.Node, 100*rate, s.Calls, rule.cfg.Window))
	}
	if rule := a.byName[observe.RuleOpenBreakers]; rule != nil {
		var open []string
		for _, name := range a.names {
			r, ok := a.reports[name]
			if _, down := a.gaveUp[name]; down || !ok {
				continue
			}
			switch {
			case r.breaker == messages.BreakerState_open:
				open = append(open, name)
			case r.breaker.Refuses(): // forced open or half-open: say which
				open = append(open, name+" ("+r.breaker.String()+")")
			}
		}
		msg := "no breaker open"
		switch len(open) {
		case 0:
		case 1:
			msg = "1 breaker open: " + open[0]
		default:
			msg = fmt.Sprintf("%d breakers open: %s", len(open), strings.Join(open, ", "))
		}
		a.judge(now, rule, "", float64(len(open)), true, msg)
	}
}

// judgeGaveUp judges supervisor_gave_up for model: firing while its
// supervisor has given it up, resolved once it reports again.
func (a *alerter) judgeGaveUp(now time.Time, model string) {
	rule := a.byName[observe.RuleSupervisorGaveUp]
	if rule == nil {
		return
	}
	g, down := a.gaveUp[model]
	if !down {
		if _, ok := a.alerts[alertKey{rule.name, model}]; ok {
			a.judge(now, rule, model, 0, true, fmt.Sprintf("model %s runs again", model))
		}
		return
	}
	a.judge(now, rule, model, float64(g.crashes), true, fmt.Sprintf("model %s is unavailable: supervisor gave up after %s", model, g.detail))
}

// judge feeds value to the rule's alert for model (a Tick when not judged:
// too few calls) and publishes the transition.
func (a *alerter) judge(now time.Time, rule *alertRule, model string, value float64, judged bool, message string) {
	k := alertKey{rule.name, model}
	inst, ok := a.alerts[k]
	if !ok {
		m, err := resilience.NewAlert(rule.machine)
		if err != nil { // validated by Config
			a.log.Error().Err(err).Str("rule", rule.name).Msg("alert rule")
			return
		}
		inst = &alertInstance{rule: rule, model: model, m: m}
		a.alerts[k] = inst
		a.order = append(a.order, inst)
	}
	tr := resilience.AlertUnchanged
	if judged {
		tr = inst.m.Observe(now, value)
		if inst.m.Firing() || tr == resilience.AlertResolved {
			inst.value, inst.message = value, message
		}
	} else {
		tr = inst.m.Tick(now)
	}
	a.transition(now, inst, tr)
}

// transition publishes and logs what the state machine did.
func (a *alerter) transition(now time.Time, inst *alertInstance, tr resilience.AlertTransition) {
	switch tr {
	case resilience.AlertUnchanged:
		return
	case resilience.AlertFired:
		inst.id = alertID(inst.rule.name, a.env.cfg.Node, inst.model, inst.m.Firings())
		inst.state, inst.sev, inst.actor = messages.Alert_fired, inst.rule.cfg.Severity, ""
	case resilience.AlertEscalated:
		inst.state, inst.sev = messages.Alert_escalated, messages.Alert_critical
	case resilience.AlertResolved:
		inst.state, inst.actor = messages.Alert_resolved, ""
	}
	inst.since = now
	ev := inst.event(a.env.cfg.Node)
	a.env.pub.Alert(ev)
	lvl := zerolog.WarnLevel
	if tr == resilience.AlertResolved {
		lvl = zerolog.InfoLevel
	}
	a.log.WithLevel(lvl).Str("id", ev.Id).Str("rule", ev.Rule).Str("model", ev.Model).Str("state", ev.State.String()).
		Str("severity", ev.Severity.String()).Float64("value", ev.Value).Float64("threshold", ev.Threshold).Msg(ev.Message)
}

// alertID names one firing: rule.node[.model].n, n counting the firings of
// that rule for that model since the node started.
func alertID(rule, node, model string, n int) string {
	if model == "" {
		return fmt.Sprintf("%s.%s.%d", rule, node, n)
	}
	return fmt.Sprintf("%s.%s.%s.%d", rule, node, model, n)
}

// event is the alert as published: a new message each time, since a
// published event is never reused.
func (inst *alertInstance) event(node string) *messages.Alert {
	msg := inst.message
	if inst.state == messages.Alert_escalated {
		msg = fmt.Sprintf("%s, firing for %v", msg, inst.since.Sub(inst.m.FiredAt()).Round(time.Second))
	}
	return &messages.Alert{
		Time: timestamp(inst.since), Id: inst.id, Rule: inst.rule.name, Severity: inst.sev, State: inst.state,
		Node: node, Model: inst.model, Message: msg, Value: inst.value, Threshold: inst.rule.machine.Threshold, Actor: inst.actor,
	}
}

// ack acknowledges a firing alert: published once, with who did it; it
// stops the alert escalating.
func (a *alerter) ack(q *ackAlert) *ackDone {
	for _, inst := range a.order {
		if !inst.m.Firing() || inst.id != q.id {
			continue
		}
		if !inst.m.Acknowledged() {
			inst.m.Acknowledge()
			inst.state, inst.actor, inst.since = messages.Alert_acknowledged, q.actor, a.env.now()
			ev := inst.event(a.env.cfg.Node)
			a.env.pub.Alert(ev)
			a.log.Info().Str("id", ev.Id).Str("rule", ev.Rule).Str("model", ev.Model).Str("actor", q.actor).Msg("alert acknowledged")
		}
		return &ackDone{alert: inst.event(a.env.cfg.Node)}
	}
	return &ackDone{err: fmt.Errorf("%w %q", ErrUnknownAlert, q.id)}
}

// firing returns the firing alerts, most severe first, then by id.
func (a *alerter) firing() []*messages.Alert {
	var out []*messages.Alert
	for _, inst := range a.order {
		if inst.m.Firing() {
			out = append(out, inst.event(a.env.cfg.Node))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Severity != out[j].Severity {
			return out[i].Severity > out[j].Severity
		}
		return out[i].Id < out[j].Id
	})
	return out
}

// AckAlert acknowledges the firing alert id on behalf of actorName: the
// Alert is published again with state acknowledged, and no longer
// escalates; it stays firing until it resolves. An id that is not firing
// (or alerts that are off) gives an error matching ErrUnknownAlert.
func (h *Hive) AckAlert(id, actorName string) (*messages.Alert, error) {
	if h.alerts == nil {
		return nil, fmt.Errorf("%w %q: alerts are off", ErrUnknownAlert, id)
	}
	res, err := h.system.Root.RequestFuture(h.alerts, &ackAlert{id: id, actor: actorName}, askTimeout).Result()
	if err != nil {
		return nil, fmt.Errorf("alerts did not answer: %w", err)
	}
	done := res.(*ackDone)
	return done.alert, done.err
}

// Alerts returns the firing alerts (acknowledged and escalated included),
// most severe first; nil when alerts are off or do not answer.
func (h *Hive) Alerts() []*messages.Alert {
	if h.alerts == nil {
		return nil
	}
	res, err := h.system.Root.RequestFuture(h.alerts, &firingQuery{}, askTimeout).Result()
	if err != nil {
		return nil
	}
	return res.([]*messages.Alert)
}
