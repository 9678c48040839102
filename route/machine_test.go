package route

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
)

// TestScripts replays every testdata/*.txt script against the machine.
//
// Commands (times are offsets from the script's start, as Go durations):
//
//	model NAME [weight=W] [retries=N] [base=D] [jitter=J] [window=N] [maxOutput=N] [prefill]
//	group NAME [fallbacks=a,b] [contextFallbacks=a,b] [policyFallbacks=a,b]
//	      [strategy=S] [maxParallel=N] [hedgeDelay=D]
//	      [timeout=D] [requestTimeout=D] [budgetRatio=R] [budgetMin=N]
//	      [panicRate=R] [maxOpenShare=S] [wait=D] [reply=TEXT]
//	      [criticalOnly] [lowerAfter=D] [maxContinuations=N]
//	view NAME [up=B] [enabled=B] [breaker=STATE] [until=T|none] [ramp=P] [score=S] [p95=D]
//	random V...            the next values the groups' random source returns (then 0.5)
//	at T                   the clock
//	start ID GROUP [stream] [budget=D] [priority=P] [received=T] [prompt=N] [maxTokens=N] [nosplice]
//	result ID.N [class=C] [latency=D] [retryAfter=D] [status=N] [text] [message=WORD] [prefillRejected]
//	fire ID TIMER          at the time the request armed it (or now, if later)
//	changed ID MODEL       a view changed
//	shutdown ID
//	state GROUP            the group's budget and degradation level
func TestScripts(t *testing.T) {
	runScripts(t, func(t *testing.T) func([]string) string {
		w := &world{t: t, members: map[string]*Member{}, groups: map[string]*Group{}, reqs: map[uint64]*Request{},
			armed: map[uint64]map[Timer]time.Time{}}
		return w.run
	})
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type world struct {
	t       *testing.T
	now     time.Duration // since t0
	members map[string]*Member
	groups  map[string]*Group
	reqs    map[uint64]*Request
	armed   map[uint64]map[Timer]time.Time
	random  []float64
}

func (w *world) clock() time.Time { return t0.Add(w.now) }

func (w *world) nextRandom() float64 {
	if len(w.random) == 0 {
		return 0.5
	}
	v := w.random[0]
	w.random = w.random[1:]
	return v
}

// args splits key=value arguments; a bare word is a key with value "true".
func args(fields []string) map[string]string {
	out := make(map[string]string, len(fields))
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			v = "true"
		}
		out[k] = v
	}
	return out
}

func (w *world) fatalf(format string, a ...any) {
	w.t.Helper()
	w.t.Fatalf(format, a...)
}

func (w *world) dur(s string) time.Duration {
	w.t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		w.fatalf("duration %q: %v", s, err)
	}
	return d
}

func (w *world) num(s string) float64 {
	w.t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		w.fatalf("number %q: %v", s, err)
	}
	return v
}

func (w *world) run(f []string) string {
	w.t.Helper()
	if len(f) == 0 {
		w.fatalf("empty command")
	}
	switch f[0] {
	case "model":
		a := args(f[2:])
		retry := resilience.RetryConfig{MaxRetries: -1}
		if v, ok := a["retries"]; ok {
			retry.MaxRetries = int(w.num(v))
		}
		if v, ok := a["base"]; ok {
			retry.BaseDelay = w.dur(v)
		}
		if v, ok := a["jitter"]; ok {
			retry.Jitter = w.num(v)
		}
		weight := 1.0
		if v, ok := a["weight"]; ok {
			weight = w.num(v)
		}
		m := NewMember(f[1], weight, retry)
		if v, ok := a["window"]; ok {
			m.ContextWindow = int(w.num(v))
		}
		if v, ok := a["maxOutput"]; ok {
			m.MaxOutput = int(w.num(v))
		}
		m.Prefill = a["prefill"] == "true"
		w.members[f[1]] = m
		return ""
	case "group":
		return w.group(f[1], args(f[2:]))
	case "view":
		return w.view(f[1], args(f[2:]))
	case "random":
		for _, v := range f[1:] {
			w.random = append(w.random, w.num(v))
		}
		return ""
	case "at":
		w.now = w.dur(f[1])
		return ""
	case "start":
		return w.start(f[1], f[2], args(f[3:]))
	case "result":
		return w.result(f[1], args(f[2:]))
	case "fire":
		r, id := w.req(f[1])
		timer := w.timer(f[2])
		if at, ok := w.armed[id][timer]; ok && at.Sub(t0) > w.now {
			w.now = at.Sub(t0)
		}
		return w.step(id, r, TimerFired{Timer: timer})
	case "changed":
		r, id := w.req(f[1])
		return w.step(id, r, ViewChanged{Model: f[2]})
	case "shutdown":
		r, id := w.req(f[1])
		return w.step(id, r, Shutdown{})
	case "state":
		g := w.groups[f[1]]
		return fmt.Sprintf("in_flight=%d extra=%d/%d level=%s", g.budget.InFlight(), g.budget.Active(), g.budget.Allowed(), g.Level())
	}
	w.fatalf("unknown command %q", f[0])
	return ""
}

func (w *world) group(name string, a map[string]string) string {
	members := []*Member{w.member(name)}
	if v, ok := a["fallbacks"]; ok {
		for _, n := range strings.Split(v, ",") {
			members = append(members, w.member(n))
		}
	}
	c := GroupConfig{Node: "n1", Members: members, Strategy: Strategy(a["strategy"]), Random: w.nextRandom}
	list := func(v string) []*Member {
		var out []*Member
		for _, n := range strings.Split(v, ",") {
			out = append(out, w.member(n))
		}
		return out
	}
	for k, v := range a {
		switch k {
		case "fallbacks", "strategy":
		case "contextFallbacks":
			c.ContextFallbacks = list(v)
		case "policyFallbacks":
			c.PolicyFallbacks = list(v)
		case "maxParallel":
			c.MaxParallel = int(w.num(v))
		case "hedgeDelay":
			c.HedgeDelay = w.dur(v)
		case "timeout":
			c.Timeout = w.dur(v)
		case "requestTimeout":
			c.RequestTimeout = w.dur(v)
		case "budgetRatio":
			c.BudgetRatio = w.num(v)
		case "budgetMin":
			c.BudgetMin = int(w.num(v))
		case "panicRate":
			c.Protection.PanicRate = w.num(v)
		case "maxOpenShare":
			c.Protection.MaxOpenShare = w.num(v)
		case "wait":
			c.AllDown.Wait = w.dur(v)
		case "reply":
			c.AllDown.Reply = strings.ReplaceAll(v, "_", " ")
		case "criticalOnly":
			c.Degradation.CriticalOnly = true
		case "lowerAfter":
			c.Degradation.LowerAfter = w.dur(v)
		case "maxContinuations":
			c.MaxContinuations = int(w.num(v))
		default:
			w.fatalf("group: unknown argument %q", k)
		}
	}
	g, err := NewGroup(c)
	if err != nil {
		return "error: " + err.Error()
	}
	w.groups[name] = g
	return ""
}

func (w *world) member(name string) *Member {
	m, ok := w.members[name]
	if !ok {
		w.fatalf("no model %q (declare it with model)", name)
	}
	return m
}

func (w *world) view(name string, a map[string]string) string {
	v := &w.member(name).View
	for k, s := range a {
		switch k {
		case "up":
			v.Up = s == "true"
		case "enabled":
			v.Enabled = s == "true"
		case "breaker":
			st, ok := messages.BreakerState_value[s]
			if !ok {
				w.fatalf("unknown breaker state %q", s)
			}
			v.Breaker = messages.BreakerState(st)
		case "until":
			v.OpenUntil = time.Time{} // none: open until changed
			if s != "none" {
				v.OpenUntil = t0.Add(w.dur(s))
			}
		case "ramp":
			v.Ramp = int(w.num(s))
		case "score":
			v.Score = w.num(s)
		case "p95":
			v.P95 = w.dur(s)
		default:
			w.fatalf("view: unknown argument %q", k)
		}
	}
	return ""
}

func (w *world) start(idText, group string, a map[string]string) string {
	id := uint64(w.num(idText))
	g, ok := w.groups[group]
	if !ok {
		w.fatalf("no group %q", group)
	}
	r := NewRequest(id, g)
	w.reqs[id] = &r
	ev := Started{Received: w.clock(), Stream: a["stream"] == "true", NoSplice: a["nosplice"] == "true"}
	if v, ok := a["budget"]; ok {
		ev.Budget = w.dur(v)
	}
	if v, ok := a["received"]; ok {
		ev.Received = t0.Add(w.dur(v))
	}
	if v, ok := a["priority"]; ok {
		ev.Priority = messages.InferRequest_Priority(messages.InferRequest_Priority_value[v])
	}
	if v, ok := a["prompt"]; ok {
		ev.Prompt = int(w.num(v))
	}
	if v, ok := a["maxTokens"]; ok {
		ev.MaxTokens = int(w.num(v))
	}
	return w.step(id, &r, ev)
}

func (w *world) result(attempt string, a map[string]string) string {
	req, n, ok := strings.Cut(attempt, ".")
	if !ok {
		w.fatalf("result: attempt %q is not ID.N", attempt)
	}
	r, id := w.req(req)
	res := Result{Attempt: NewAttemptID(id, uint16(w.num(n)))}
	for k, v := range a {
		switch k {
		case "class":
			c, err := messages.ParseErrorClass(v)
			if err != nil {
				w.fatalf("%v", err)
			}
			res.Class = c
		case "latency":
			res.Latency = w.dur(v)
		case "retryAfter":
			res.RetryAfter = w.dur(v)
		case "status":
			res.Status = int32(w.num(v))
		case "text":
			res.TextSent = true
		case "prefillRejected":
			res.PrefillRejected = true
		case "message":
			res.Message = v
		default:
			w.fatalf("result: unknown argument %q", k)
		}
	}
	if res.Class == messages.ErrorClass_ok {
		res.Content, res.Usage = "answer "+attempt, &messages.Usage{CompletionTokens: 2}
	}
	return w.step(id, r, res)
}

func (w *world) req(idText string) (*Request, uint64) {
	id := uint64(w.num(idText))
	r, ok := w.reqs[id]
	if !ok {
		w.fatalf("no request %d", id)
	}
	return r, id
}

func (w *world) timer(name string) Timer {
	for t := range timerCount {
		if t.String() == name {
			return t
		}
	}
	w.fatalf("unknown timer %q", name)
	return 0
}

// step steps r and prints its effects, one a line, remembering the timers
// it arms.
func (w *world) step(id uint64, r *Request, ev Event) string {
	fx := r.Step(w.clock(), ev)
	var b strings.Builder
	for _, e := range fx {
		switch e.Kind {
		case Launch:
			fmt.Fprintf(&b, "launch %s %s %s", e.Attempt, e.Model, e.Why)
			if e.Continue != Fresh {
				fmt.Fprintf(&b, " continue=%s", e.Continue)
			}
			b.WriteString("\n")
		case Cancel:
			fmt.Fprintf(&b, "cancel %s %s\n", e.Attempt, e.Model)
		case Arm:
			if w.armed[id] == nil {
				w.armed[id] = map[Timer]time.Time{}
			}
			w.armed[id][e.Timer] = e.At
			fmt.Fprintf(&b, "arm %s at=%s\n", e.Timer, e.At.Sub(t0))
		case Piece:
			fmt.Fprintf(&b, "piece %s %q\n", e.Model, e.Text)
		case Finish:
			b.WriteString(reply(e.Reply))
			if e.Degraded != nil {
				fmt.Fprintf(&b, "  degradation %s -> %s\n", e.Degraded.From, e.Degraded.To)
			}
		default:
			fmt.Fprintf(&b, "effect %d?\n", e.Kind)
		}
	}
	if r.Waiting() {
		b.WriteString("waiting\n")
	}
	return b.String()
}

// reply prints a Finish's reply: its outcome, then its attempts.
func reply(resp *messages.InferResponse) string {
	var b strings.Builder
	if e := resp.GetError(); e != nil {
		fmt.Fprintf(&b, "finish error=%s code=%s", e.GetClass(), e.GetCode())
		if e.GetRetryAfterMs() > 0 {
			fmt.Fprintf(&b, " retry_after=%dms", e.GetRetryAfterMs())
		}
		if e.GetMessage() != "" {
			fmt.Fprintf(&b, " message=%q", e.GetMessage())
		}
	} else {
		fmt.Fprintf(&b, "finish served_by=%s", resp.GetServedBy())
		if resp.GetContent() != "" {
			fmt.Fprintf(&b, " content=%q", resp.GetContent())
		}
	}
	if resp.GetServedBy() != "" && resp.GetError() != nil {
		fmt.Fprintf(&b, " served_by=%s", resp.GetServedBy())
	}
	if c := resp.GetContinuation(); c != "" {
		fmt.Fprintf(&b, " continuation=%s", c)
	}
	fmt.Fprintf(&b, " degradation=%s overhead=%s\n", resp.GetDegradation(), time.Duration(resp.GetOverheadUs())*time.Microsecond)
	if len(resp.GetAttempts()) > 0 {
		parts := make([]string, 0, len(resp.GetAttempts()))
		for _, a := range resp.GetAttempts() {
			if a.GetSkipped() != messages.Attempt_called {
				parts = append(parts, fmt.Sprintf("%s=skipped:%s", a.GetModel(), a.GetSkipped()))
				continue
			}
			s := fmt.Sprintf("%s=%s %gms", a.GetModel(), a.GetErrorClass(), a.GetLatencyMs())
			if a.GetRetried() {
				s += " retried"
			}
			if a.GetHedged() {
				s += " hedged"
			}
			if c := a.GetContinued(); c != "" {
				s += " continued=" + c
			}
			parts = append(parts, s)
		}
		fmt.Fprintf(&b, "  attempts: %s\n", strings.Join(parts, ", "))
	}
	return b.String()
}
