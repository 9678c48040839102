package chaos

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/internal/yamlnode"
	"github.com/cmmv-hive/resilience/messages"
)

// Keys every fault may give, and the ones each kind adds. A key outside
// both is a problem: a latencyMs on an error fault is a mistake, not a
// setting the node would silently ignore.
var (
	faultCommon = []string{"node", "id", "kind"}
	faultKeys   = map[messages.FaultSpec_Kind][]string{
		messages.FaultSpec_error:            {"model", "probability", "startAfterMs", "durationMs", "errorClass", "statusCode"},
		messages.FaultSpec_latency:          {"model", "probability", "startAfterMs", "durationMs", "latencyMs", "jitterMs"},
		messages.FaultSpec_hang:             {"model", "probability", "startAfterMs", "durationMs"},
		messages.FaultSpec_connection_reset: {"model", "probability", "startAfterMs", "durationMs"},
		messages.FaultSpec_slow_first_token: {"model", "probability", "startAfterMs", "durationMs", "latencyMs", "jitterMs"},
		messages.FaultSpec_cut_stream:       {"model", "probability", "startAfterMs", "durationMs", "afterTokens"},
		messages.FaultSpec_stall_stream:     {"model", "probability", "startAfterMs", "durationMs", "afterTokens"},
		messages.FaultSpec_malformed_chunk:  {"model", "probability", "startAfterMs", "durationMs", "afterTokens"},
		messages.FaultSpec_rate_limit:       {"model", "probability", "startAfterMs", "durationMs", "retryAfterMs"},
		messages.FaultSpec_panic:            {"model", "probability", "startAfterMs", "durationMs"},
		messages.FaultSpec_partition:        {"startAfterMs", "durationMs"},
		messages.FaultSpec_kill:             {"startAfterMs"},
	}
	// stepCommands are the operator commands a timeline may send.
	stepCommands = []string{bus.CmdBreakerOpen, bus.CmdBreakerClose, bus.CmdBreakerReset,
		bus.CmdModelEnable, bus.CmdModelDisable, bus.CmdDrain}
)

// faultKinds lists the fault kinds in enum order.
func faultKinds() []string {
	out := make([]string, 0, len(messages.FaultSpec_Kind_name))
	for i := range int32(len(messages.FaultSpec_Kind_name)) {
		out = append(out, messages.FaultSpec_Kind_name[i])
	}
	return out
}

// errorClasses lists the error classes a fault may give (every one but ok).
func errorClasses() []string {
	out := make([]string, 0, len(messages.ErrorClass_name))
	for i := int32(1); i < int32(len(messages.ErrorClass_name)); i++ {
		out = append(out, messages.ErrorClass_name[i])
	}
	return out
}

func decodeStep(d *decoder, v *yaml.Node, path string) Step {
	st := Step{Line: v.Line, Node: "all"}
	var actions []string
	sawAt := false
	act := func(a Action, fn func(v *yaml.Node, p string)) func(v *yaml.Node, p string) {
		return func(v *yaml.Node, p string) {
			actions = append(actions, string(a))
			st.Action = a
			fn(v, p)
		}
	}
	nodeOnly := func(v *yaml.Node, p string) {
		st.Node = ""
		d.mapping(v, p, fields{"node": func(v *yaml.Node, p string) { st.Node = d.str(v, p) }})
		if st.Node == "" && yamlnode.Resolve(v).Kind == yaml.MappingNode {
			d.errorf(v, p+".node", "is required: the node to act on (n1, n2 ...)")
		}
	}
	d.mapping(v, path, fields{
		"at":      func(v *yaml.Node, p string) { st.At, sawAt = d.duration(v, p), true },
		"fault":   act(ActFault, func(v *yaml.Node, p string) { st.Node, st.Fault = decodeFault(d, v, p) }),
		"clear":   act(ActClear, func(v *yaml.Node, p string) { decodeClear(d, v, p, &st) }),
		"admin":   act(ActAdmin, func(v *yaml.Node, p string) { decodeAdmin(d, v, p, &st) }),
		"kill":    act(ActKill, nodeOnly),
		"restart": act(ActRestart, nodeOnly),
	})
	if yamlnode.Resolve(v).Kind != yaml.MappingNode {
		return st
	}
	if !sawAt {
		d.errorf(v, path+".at", "is required: the step's offset from the start of the load")
	}
	switch len(actions) {
	case 0:
		d.errorf(v, path, "needs one action: fault, clear, admin, kill or restart")
	case 1:
	default:
		d.errorf(v, path, "has %d actions (%s): give one per step", len(actions), strings.Join(actions, ", "))
		st.Action = "" // nothing more to check about it
	}
	return st
}

func decodeFault(d *decoder, v *yaml.Node, path string) (string, *messages.FaultSpec) {
	f := &messages.FaultSpec{}
	node := "all"
	given := map[string]*yaml.Node{}
	sawKind := false
	set := func(key string, fn func(v *yaml.Node, p string)) func(v *yaml.Node, p string) {
		return func(v *yaml.Node, p string) {
			given[key] = v
			fn(v, p)
		}
	}
	d.mapping(v, path, fields{
		"node":  set("node", func(v *yaml.Node, p string) { node = d.str(v, p) }),
		"id":    set("id", func(v *yaml.Node, p string) { f.Id = d.str(v, p) }),
		"model": set("model", func(v *yaml.Node, p string) { f.Model = d.str(v, p) }),
		"kind": set("kind", func(v *yaml.Node, p string) {
			s := d.str(v, p)
			k, ok := messages.FaultSpec_Kind_value[s]
			if !ok {
				if s != "" {
					d.errorf(v, p, "unknown fault kind %q (known: %s)", s, strings.Join(faultKinds(), ", "))
				}
				return
			}
			f.Kind, sawKind = messages.FaultSpec_Kind(k), true
		}),
		"errorClass": set("errorClass", func(v *yaml.Node, p string) {
			s := d.str(v, p)
			c, ok := messages.ErrorClass_value[s]
			if !ok || c == 0 {
				if s != "" {
					d.errorf(v, p, "unknown error class %q (known: %s)", s, strings.Join(errorClasses(), ", "))
				}
				return
			}
			f.ErrorClass = messages.ErrorClass(c)
		}),
		"statusCode":   set("statusCode", func(v *yaml.Node, p string) { f.StatusCode = int32(d.integer(v, p, 400, 599)) }),
		"probability":  set("probability", func(v *yaml.Node, p string) { f.Probability = d.number(v, p, 0.000001, 1) }),
		"latencyMs":    set("latencyMs", func(v *yaml.Node, p string) { f.LatencyMs = d.millis(v, p) }),
		"jitterMs":     set("jitterMs", func(v *yaml.Node, p string) { f.JitterMs = d.millis(v, p) }),
		"afterTokens":  set("afterTokens", func(v *yaml.Node, p string) { f.AfterTokens = int32(d.integer(v, p, 0, 1000000)) }),
		"retryAfterMs": set("retryAfterMs", func(v *yaml.Node, p string) { f.RetryAfterMs = d.millis(v, p) }),
		"startAfterMs": set("startAfterMs", func(v *yaml.Node, p string) { f.StartAfterMs = d.millis(v, p) }),
		"durationMs":   set("durationMs", func(v *yaml.Node, p string) { f.DurationMs = d.millis(v, p) }),
	})
	if yamlnode.Resolve(v).Kind != yaml.MappingNode {
		return node, f
	}
	if !sawKind {
		if given["kind"] == nil {
			d.errorf(v, path+".kind", "is required (one of %s)", strings.Join(faultKinds(), ", "))
		}
		return node, f
	}
	allowed := faultKeys[f.Kind]
	for _, key := range sortedKeys(given) {
		if !slices.Contains(faultCommon, key) && !slices.Contains(allowed, key) {
			d.errorf(given[key], path+"."+key, "does not apply to a %s fault (it takes %s)", f.Kind, strings.Join(allowed, ", "))
		}
	}
	switch f.Kind {
	case messages.FaultSpec_error:
		if f.ErrorClass == messages.ErrorClass_ok && f.StatusCode == 0 && given["errorClass"] == nil {
			f.ErrorClass = messages.ErrorClass_server_error // say it, rather than rely on the node's default
		}
	case messages.FaultSpec_latency, messages.FaultSpec_slow_first_token:
		if f.LatencyMs <= 0 && given["latencyMs"] == nil {
			d.errorf(v, path+".latencyMs", "is required for a %s fault", f.Kind)
		}
	case messages.FaultSpec_cut_stream:
		if f.AfterTokens <= 0 {
			d.errorf(v, path+".afterTokens", "must be at least 1 for cut_stream (to fail before the first piece, inject an error)")
		}
	case messages.FaultSpec_partition:
		if f.DurationMs <= 0 {
			d.errorf(v, path+".durationMs", "is required for a partition and must be > 0: a node cut from NATS cannot hear a clear")
		}
	}
	if f.Kind == messages.FaultSpec_partition || f.Kind == messages.FaultSpec_kill {
		if node == "all" || node == "*" {
			d.errorf(v, path+".node", "a %s fault names one node (n1, n2 ...), not all", f.Kind)
		}
	}
	return node, f
}

func decodeClear(d *decoder, v *yaml.Node, path string, st *Step) {
	d.mapping(v, path, fields{
		"node": func(v *yaml.Node, p string) { st.Node = d.str(v, p) },
		"id":   func(v *yaml.Node, p string) { st.ClearID = d.str(v, p) },
	})
}

func decodeAdmin(d *decoder, v *yaml.Node, path string, st *Step) {
	st.Admin = &messages.AdminCommand{}
	var durNode *yaml.Node
	d.mapping(v, path, fields{
		"command": func(v *yaml.Node, p string) {
			st.Command = d.str(v, p)
			if st.Command != "" && !slices.Contains(stepCommands, st.Command) {
				d.errorf(v, p, "unknown command %q (known: %s)", st.Command, strings.Join(stepCommands, ", "))
			}
		},
		"model":  func(v *yaml.Node, p string) { st.Admin.Model = d.str(v, p) },
		"node":   func(v *yaml.Node, p string) { st.Node = d.str(v, p) },
		"reason": func(v *yaml.Node, p string) { st.Admin.Reason = d.str(v, p) },
		"duration": func(v *yaml.Node, p string) {
			durNode = v
			st.Admin.DurationMs = d.millis(v, p)
		},
	})
	if yamlnode.Resolve(v).Kind != yaml.MappingNode {
		return
	}
	switch {
	case st.Command == "":
		d.errorf(v, path+".command", "is required (one of %s)", strings.Join(stepCommands, ", "))
	case st.Command == bus.CmdDrain:
		if st.Admin.Model != "" {
			d.errorf(v, path+".model", "does not apply to drain, which acts on a whole node")
		}
	case st.Admin.Model == "":
		d.errorf(v, path+".model", "is required for %s", st.Command)
	}
	if durNode != nil && st.Command != bus.CmdBreakerOpen {
		d.errorf(durNode, path+".duration", "applies to breaker_open only")
	}
	if st.Admin.Reason == "" {
		st.Admin.Reason = "chaos scenario"
	}
}

// cloneFault copies a fault spec.
func cloneFault(f *messages.FaultSpec) *messages.FaultSpec {
	return proto.Clone(f).(*messages.FaultSpec)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// String describes the step in one line, as the report lists it.
func (st Step) String() string {
	switch st.Action {
	case ActFault:
		return "fault " + describeFault(st.Node, st.Fault)
	case ActClear:
		if st.ClearID == "" {
			return "clear every fault on " + st.Node
		}
		return fmt.Sprintf("clear %s on %s", st.ClearID, st.Node)
	case ActAdmin:
		s := st.Command
		if m := st.Admin.GetModel(); m != "" {
			s += " " + m
		}
		if ms := st.Admin.GetDurationMs(); ms > 0 {
			s += fmt.Sprintf(" for %s", time.Duration(ms)*time.Millisecond)
		}
		return "admin " + s + " on " + st.Node
	default:
		return string(st.Action) + " " + st.Node
	}
}

// describeFault renders a fault as "f1 error server_error on gpt-5 @all for 10s".
func describeFault(node string, f *messages.FaultSpec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", f.GetId(), f.GetKind())
	switch f.GetKind() {
	case messages.FaultSpec_error:
		if f.GetErrorClass() != messages.ErrorClass_ok {
			fmt.Fprintf(&b, " %s", f.GetErrorClass())
		}
		if f.GetStatusCode() != 0 {
			fmt.Fprintf(&b, " %d", f.GetStatusCode())
		}
	case messages.FaultSpec_latency, messages.FaultSpec_slow_first_token:
		fmt.Fprintf(&b, " %dms", f.GetLatencyMs())
		if f.GetJitterMs() > 0 {
			fmt.Fprintf(&b, "+-%dms", f.GetJitterMs())
		}
	case messages.FaultSpec_cut_stream, messages.FaultSpec_stall_stream, messages.FaultSpec_malformed_chunk:
		fmt.Fprintf(&b, " after %d tokens", f.GetAfterTokens())
	case messages.FaultSpec_rate_limit:
		fmt.Fprintf(&b, " retry-after %dms", f.GetRetryAfterMs())
	}
	if f.GetKind() != messages.FaultSpec_partition && f.GetKind() != messages.FaultSpec_kill {
		m := f.GetModel()
		if m == "" {
			m = "*"
		}
		fmt.Fprintf(&b, " on %s", m)
	}
	fmt.Fprintf(&b, " @%s", node)
	if p := f.GetProbability(); p > 0 && p < 1 {
		fmt.Fprintf(&b, " p=%g", p)
	}
	if f.GetStartAfterMs() > 0 {
		fmt.Fprintf(&b, " after %s", time.Duration(f.GetStartAfterMs())*time.Millisecond)
	}
	if f.GetDurationMs() > 0 {
		fmt.Fprintf(&b, " for %s", time.Duration(f.GetDurationMs())*time.Millisecond)
	}
	return b.String()
}
