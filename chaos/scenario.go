package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/internal/yamlnode"
	"github.com/cmmv-hive/resilience/messages"
)

// Limits and defaults of a scenario.
const (
	// MaxNodes is the most hive nodes a scenario may start.
	MaxNodes = 9
	// DefaultTimeout is a request's deadline when load.timeout is not given.
	DefaultTimeout = 10 * time.Second
	// maxLoad bounds load.duration.
	maxLoad = time.Hour
)

// Scenario is one chaos scenario, parsed and validated: what steady state
// looks like, the hive configuration it runs, the load, the timeline of
// faults and operator actions, and the objectives that score it.
type Scenario struct {
	File        string // the file it was read from
	Name        string // name: a token ([A-Za-z0-9_-]+); names the output directory
	Description string // description: one paragraph, shown by chaos list
	SteadyState string // steadyState: what normal looks like, in prose
	// Nodes is how many hive nodes the runner starts (nodes:, default 1).
	// One node embeds its NATS server; more join real nats-server processes
	// clustered on loopback, one server per node.
	Nodes      int
	Hive       Hive
	Load       Load
	Timeline   []Step      // timeline: in time order
	Objectives []Objective // objectives: all must pass
	// Short holds the overrides of the short version (short:); nil when the
	// scenario has none.
	Short *Short
	// IsShort is true for the scenario Shorten returned.
	IsShort bool
}

// Hive is the configuration of the nodes the runner starts: the two files a
// node reads, as the scenario gives them (hive.global and hive.models).
type Hive struct {
	Global []byte         // resilience.yml; nil when hive.global is not given
	Models []byte         // models-resilience.yml, "models:" included
	Config *config.Config // both, loaded and validated
}

// Load is the traffic a scenario drives (load:). Exactly one of Rate and
// Concurrency is set.
type Load struct {
	// Kind is what each item of the load is (kind:): a request on
	// hive.v1.infer (LoadRequests, the default) or a durable job
	// (LoadJobs).
	Kind        LoadKind
	Rate        float64       // rate: requests started per second, open loop
	Concurrency int           // concurrency: requests in flight at all times, closed loop
	Duration    time.Duration // duration: of the whole load, warmup included
	Warmup      time.Duration // warmup: first part of the load, not scored (default 0)
	Timeout     time.Duration // timeout: each request's deadline (default DefaultTimeout)
	StreamShare float64       // streamShare: share of requests sent with stream true, 0 to 1
	ToolsShare  float64       // toolsShare: share of requests sent with a tools array (a stream of one is never continued after a cut), 0 to 1
	Mix         []Mix         // mix: models requested, by weight
	// Connections is how many NATS connections carry the load (connections:);
	// 0 means one per NATS server the runner started, or 1 against a
	// deployment. Workers are spread over them round-robin.
	Connections int
	// IdempotencyKeys gives every request (or job) an idempotency key of
	// its own (idempotencyKeys:), unique to the run.
	IdempotencyKeys bool
	// Retry sends a request (a job's submission) again, with the same
	// key, when it got no answer in time (retry:); zero: never.
	Retry Retry
	// ResultTimeout (resultTimeout:, jobs only) is how long after its
	// acceptance a job may take to end before it counts as lost. Default
	// (jobs.maxDeliveries + 1) x (jobs.ackWait + timeout) of the hive
	// configuration: every node that may take it dies just before the end.
	ResultTimeout time.Duration
}

// LoadKind is what the load sends.
type LoadKind string

// The load kinds.
const (
	// LoadRequests: request-reply on hive.v1.infer; the reply is the outcome.
	LoadRequests LoadKind = "requests"
	// LoadJobs: a durable job submitted on hive.v1.jobs.submit; its outcome
	// is its result, announced on hive.v1.jobs.done.<id> or read with
	// hive.v1.jobs.get.
	LoadJobs LoadKind = "jobs"
)

// Retry is how a client of the load retries (load.retry).
type Retry struct {
	// After is how long an attempt waits for its answer before the next
	// one is sent (after:); the last attempt waits for the rest of the
	// timeout.
	After time.Duration
	// Attempts is how many times a request is sent at most, the first
	// included (attempts:, default 3).
	Attempts int
}

// DefaultRetryAttempts is load.retry.attempts when not given.
const DefaultRetryAttempts = 3

// Mix is one model of the request mix and its weight.
type Mix struct {
	Model  string
	Weight float64 // > 0, default 1
}

// Action is what a timeline step does.
type Action string

// The timeline actions.
const (
	ActFault   Action = "fault"   // inject a fault (hive.v1.chaos.<node|all>.inject)
	ActClear   Action = "clear"   // clear one fault, or all (hive.v1.chaos.<node|all>.clear)
	ActAdmin   Action = "admin"   // an operator command (hive.v1.admin.<node|all>.<command>)
	ActKill    Action = "kill"    // kill -9 a node the runner started
	ActRestart Action = "restart" // start a killed node again, same name and configuration
)

// Step is one entry of the timeline.
type Step struct {
	Line   int           // line of the step in the file
	At     time.Duration // at: offset from the start of the load
	Action Action
	// Node is "all" or a node name (n1 ... nN); kill and restart name one.
	Node string
	// Fault is the fault to inject (ActFault). Its ID is the one given, or
	// f<k> for the k-th fault step.
	Fault *messages.FaultSpec
	// ClearID is the fault a clear step ends; "" clears every fault.
	ClearID string
	// Command and Admin are the operator command (ActAdmin).
	Command string
	Admin   *messages.AdminCommand
}

// Short holds the overrides of a scenario's short version.
type Short struct {
	Line       int
	Duration   time.Duration  // load.duration
	Warmup     *time.Duration // load.warmup, when given
	Steps      []ShortStep    // one per timeline step, in order
	Objectives []Objective    // replace the objectives of the same metric, or add
}

// ShortStep overrides one timeline step in the short version.
type ShortStep struct {
	Line     int
	At       time.Duration
	Duration *time.Duration // the fault's durationMs or the admin command's duration, when given
}

// NodeName is the name of the i-th node (from 1) the runner starts: n1, n2...
func NodeName(i int) string { return "n" + strconv.Itoa(i) }

// ReadFile reads and validates the scenario file at path.
func ReadFile(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: "cannot read: " + errors.Unwrap(err).Error()}
	}
	return Parse(path, data)
}

// Parse is ReadFile on contents in memory; name appears in error messages. It
// returns every problem found at once, each an *Error with its line.
func Parse(name string, data []byte) (*Scenario, error) {
	d := &decoder{file: name}
	root, ok := document(d, data)
	if !ok {
		return nil, d.err()
	}
	sc := &Scenario{File: name, Nodes: 1, Load: Load{Kind: LoadRequests, Timeout: DefaultTimeout}}
	var hive hiveNodes
	var shortNode *yaml.Node
	d.mapping(root, "", fields{
		"name":        func(v *yaml.Node, p string) { sc.Name = d.str(v, p) },
		"description": func(v *yaml.Node, p string) { sc.Description = d.str(v, p) },
		"steadyState": func(v *yaml.Node, p string) { sc.SteadyState = d.str(v, p) },
		"nodes":       func(v *yaml.Node, p string) { sc.Nodes = d.integer(v, p, 1, MaxNodes) },
		"hive":        func(v *yaml.Node, p string) { hive.decode(d, v, p) },
		"load":        func(v *yaml.Node, p string) { sc.Load.decode(d, v, p) },
		"timeline": func(v *yaml.Node, p string) {
			d.list(v, p, func(_ int, item *yaml.Node, ip string) { sc.Timeline = append(sc.Timeline, decodeStep(d, item, ip)) })
		},
		"objectives": func(v *yaml.Node, p string) { sc.Objectives = decodeObjectives(d, v, p) },
		"short":      func(v *yaml.Node, p string) { shortNode = v },
	})
	if root != nil {
		if shortNode != nil {
			sc.Short = decodeShort(d, shortNode, "short")
		}
		sc.validate(d, root, &hive)
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	return sc, nil
}

// document parses data as one YAML document and returns its root mapping.
func document(d *decoder, data []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		d.errorf(nil, "", "the file is empty")
		return nil, false
	} else if err != nil {
		syntaxError(d, err)
		return nil, false
	}
	var next yaml.Node
	if err := dec.Decode(&next); err != nil && !errors.Is(err, io.EOF) {
		syntaxError(d, err)
		return nil, false
	} else if err == nil {
		d.errorf(&next, "", "a second YAML document (\"---\") is not allowed")
		return nil, false
	}
	if len(doc.Content) == 0 {
		d.errorf(nil, "", "the file is empty")
		return nil, false
	}
	return doc.Content[0], true
}

// yamlLine matches the position yaml.v3 puts in front of a syntax error.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError records a YAML syntax error at the line yaml.v3 gives.
func syntaxError(d *decoder, err error) {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.errorf(&yaml.Node{Line: line}, "", "invalid YAML: %s", m[2])
		return
	}
	d.errorf(nil, "", "invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
}

// hiveNodes keeps the hive block's YAML until it is validated.
type hiveNodes struct {
	line           int
	global, models *yaml.Node
}

func (h *hiveNodes) decode(d *decoder, v *yaml.Node, path string) {
	h.line = v.Line
	d.mapping(v, path, fields{
		"global": func(v *yaml.Node, _ string) { h.global = yamlnode.Resolve(v) },
		"models": func(v *yaml.Node, _ string) { h.models = yamlnode.Resolve(v) },
	})
}

func (l *Load) decode(d *decoder, v *yaml.Node, path string) {
	d.mapping(v, path, fields{
		"rate":        func(v *yaml.Node, p string) { l.Rate = d.number(v, p, 0.1, 100000) },
		"concurrency": func(v *yaml.Node, p string) { l.Concurrency = d.integer(v, p, 1, 10000) },
		"duration":    func(v *yaml.Node, p string) { l.Duration = d.duration(v, p) },
		"warmup":      func(v *yaml.Node, p string) { l.Warmup = d.duration(v, p) },
		"timeout":     func(v *yaml.Node, p string) { l.Timeout = d.duration(v, p) },
		"streamShare": func(v *yaml.Node, p string) { l.StreamShare = d.number(v, p, 0, 1) },
		"toolsShare":  func(v *yaml.Node, p string) { l.ToolsShare = d.number(v, p, 0, 1) },
		"connections": func(v *yaml.Node, p string) { l.Connections = d.integer(v, p, 1, 64) },
		"kind": func(v *yaml.Node, p string) {
			switch k := LoadKind(d.str(v, p)); k {
			case LoadRequests, LoadJobs:
				l.Kind = k
			case "":
			default:
				d.errorf(v, p, "unknown kind %q (known: %s, %s)", k, LoadRequests, LoadJobs)
			}
		},
		"idempotencyKeys": func(v *yaml.Node, p string) { l.IdempotencyKeys = d.boolean(v, p) },
		"resultTimeout":   func(v *yaml.Node, p string) { l.ResultTimeout = d.duration(v, p) },
		"retry": func(v *yaml.Node, p string) {
			l.Retry.Attempts = DefaultRetryAttempts
			d.mapping(v, p, fields{
				"after":    func(v *yaml.Node, p string) { l.Retry.After = d.duration(v, p) },
				"attempts": func(v *yaml.Node, p string) { l.Retry.Attempts = d.integer(v, p, 2, 100) },
			})
			if l.Retry.After == 0 && find(v, "after") == nil && yamlnode.Resolve(v).Kind == yaml.MappingNode {
				d.errorf(v, p+".after", "is required: how long an attempt waits for its answer before the next is sent")
			}
		},
		"mix": func(v *yaml.Node, p string) {
			d.list(v, p, func(_ int, item *yaml.Node, ip string) {
				m := Mix{Weight: 1}
				d.mapping(item, ip, fields{
					"model":  func(v *yaml.Node, p string) { m.Model = d.str(v, p) },
					"weight": func(v *yaml.Node, p string) { m.Weight = d.number(v, p, 0.000001, 1e9) },
				})
				if m.Model == "" && item.Kind == yaml.MappingNode {
					d.errorf(item, ip+".model", "is required")
				}
				l.Mix = append(l.Mix, m)
			})
		},
	})
}

func decodeShort(d *decoder, v *yaml.Node, path string) *Short {
	s := &Short{Line: v.Line}
	d.mapping(v, path, fields{
		"duration": func(v *yaml.Node, p string) { s.Duration = d.duration(v, p) },
		"warmup": func(v *yaml.Node, p string) {
			w := d.duration(v, p)
			s.Warmup = &w
		},
		"timeline": func(v *yaml.Node, p string) {
			d.list(v, p, func(_ int, item *yaml.Node, ip string) {
				st := ShortStep{Line: item.Line}
				sawAt := false
				d.mapping(item, ip, fields{
					"at": func(v *yaml.Node, p string) { st.At, sawAt = d.duration(v, p), true },
					"duration": func(v *yaml.Node, p string) {
						du := d.duration(v, p)
						st.Duration = &du
					},
				})
				if !sawAt {
					d.errorf(item, ip+".at", "is required")
				}
				s.Steps = append(s.Steps, st)
			})
		},
		"objectives": func(v *yaml.Node, p string) { s.Objectives = decodeObjectives(d, v, p) },
	})
	if s.Duration == 0 {
		d.errorf(v, path+".duration", "is required: the short version's load duration")
	}
	return s
}

// Shorten returns the scenario's short version: its load duration, warmup,
// step offsets and durations, and objectives replaced by those of short:.
// It fails when the scenario has no short version.
func (sc *Scenario) Shorten() (*Scenario, error) {
	if sc.Short == nil {
		return nil, fmt.Errorf("%s: scenario %s has no short version (add a short: block)", sc.File, sc.Name)
	}
	out := *sc
	out.IsShort = true
	out.Load.Duration = sc.Short.Duration
	if sc.Short.Warmup != nil {
		out.Load.Warmup = *sc.Short.Warmup
	}
	out.Timeline = make([]Step, len(sc.Timeline))
	for i, st := range sc.Timeline {
		ov := sc.Short.Steps[i] // validate checked the lengths match
		st.At = ov.At
		if ov.Duration != nil {
			ms := int32(*ov.Duration / time.Millisecond)
			switch {
			case st.Fault != nil:
				f := cloneFault(st.Fault)
				f.DurationMs = ms
				st.Fault = f
			case st.Admin != nil:
				st.Admin = &messages.AdminCommand{Model: st.Admin.GetModel(), DurationMs: ms, Reason: st.Admin.GetReason()}
			}
		}
		out.Timeline[i] = st
	}
	out.Objectives = mergeObjectives(sc.Objectives, sc.Short.Objectives)
	return &out, nil
}

// ScenarioFiles lists the scenario files (*.yml, *.yaml) of dir, sorted.
func ScenarioFiles(dir string) ([]string, error) {
	var out []string
	for _, pat := range []string{"*.yml", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, err
		}
		out = append(out, m...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no scenario files (*.yml) in %s", dir)
	}
	slices.Sort(out)
	return out, nil
}
