package chaos

import (
	"errors"
	"fmt"
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

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// validate checks what the keys' decoding could not: required keys, bounds
// that depend on one another, and references to models, nodes and faults.
func (sc *Scenario) validate(d *decoder, root *yaml.Node, h *hiveNodes) {
	missing := func(path, what string) {
		d.errorf(&yaml.Node{Line: lineOf(root, path)}, path, "is required: %s", what)
	}
	switch {
	case sc.Name == "":
		missing("name", "a name of letters, digits, - and _")
	case !tokenRE.MatchString(sc.Name):
		d.errorf(find(root, "name"), "name", "%q may hold only letters, digits, - and _ (it names the output directory)", sc.Name)
	}
	if strings.TrimSpace(sc.Description) == "" {
		missing("description", "what the scenario does, in a sentence or two")
	}
	if strings.TrimSpace(sc.SteadyState) == "" {
		missing("steadyState", "what normal looks like before any fault, in prose")
	}
	if h.models == nil {
		missing("hive.models", "the models the nodes serve, as in models-resilience.yml")
	} else {
		sc.Hive = validateHive(d, h)
	}
	sc.validateLoad(d, root, missing)
	sc.validateTimeline(d, root)
	if len(sc.Objectives) == 0 && !d.hasErrorUnder("objectives") {
		missing("objectives", "at least one, such as \"success_rate >= 0.99\"")
	}
	if sc.Short != nil && len(d.errs) == 0 {
		sc.validateShort(d, root)
	}
}

func (sc *Scenario) validateLoad(d *decoder, root *yaml.Node, missing func(path, what string)) {
	l := &sc.Load
	if find(root, "load") == nil {
		missing("load", "the traffic: rate or concurrency, duration and mix")
		return
	}
	switch {
	case l.Rate == 0 && l.Concurrency == 0 && find(root, "load.rate") == nil && find(root, "load.concurrency") == nil:
		missing("load.rate", "give rate (requests started per second) or concurrency (requests in flight)")
	case l.Rate > 0 && l.Concurrency > 0:
		d.errorf(find(root, "load.concurrency"), "load.concurrency", "give rate or concurrency, not both")
	}
	switch {
	case l.Duration == 0 && find(root, "load.duration") == nil:
		missing("load.duration", "how long the load runs, warmup included")
	case l.Duration <= 0:
		d.errorf(find(root, "load.duration"), "load.duration", "must be > 0")
	case l.Duration > maxLoad:
		d.errorf(find(root, "load.duration"), "load.duration", "%s is longer than %s", l.Duration, maxLoad)
	case l.Warmup >= l.Duration:
		d.errorf(find(root, "load.warmup"), "load.warmup", "%s must be shorter than load.duration (%s)", l.Warmup, l.Duration)
	}
	if l.Timeout <= 0 {
		d.errorf(find(root, "load.timeout"), "load.timeout", "must be > 0")
	}
	if len(l.Mix) == 0 && find(root, "load.mix") == nil {
		missing("load.mix", "the models to request, as a list of {model, weight}")
	}
	for i, m := range l.Mix {
		path := fmt.Sprintf("load.mix[%d].model", i)
		if m.Model != "" {
			sc.checkModel(d, root, path, m.Model)
		}
	}
	sc.validateKeysAndJobs(d, root)
}

// validateKeysAndJobs checks the keys of a load of jobs, of idempotency
// keys and of retries, which only make sense together.
func (sc *Scenario) validateKeysAndJobs(d *decoder, root *yaml.Node) {
	l := &sc.Load
	jobs := l.Kind == LoadJobs
	if jobs && l.StreamShare > 0 {
		d.errorf(find(root, "load.streamShare"), "load.streamShare", "a job cannot stream (its answer is kept as one result): leave streamShare out with kind: jobs")
	}
	if n := find(root, "load.resultTimeout"); n != nil && !jobs {
		d.errorf(n, "load.resultTimeout", "applies to kind: jobs only")
	}
	if r := find(root, "load.retry"); r != nil {
		switch {
		case l.StreamShare > 0 && !jobs:
			d.errorf(r, "load.retry", "retries are sent for plain requests only: leave streamShare out")
		case jobs && !l.IdempotencyKeys && !d.hasErrorUnder("load.idempotencyKeys"):
			d.errorf(r, "load.retry", "a submission sent again without an idempotency key may be stored as two jobs: set idempotencyKeys: true")
		case l.Retry.After > 0 && l.Retry.After >= l.Timeout:
			d.errorf(find(root, "load.retry.after"), "load.retry.after", "%s must be shorter than load.timeout (%s): the last attempt waits for the rest of it", l.Retry.After, l.Timeout)
		}
	}
	cfg := sc.Hive.Config
	if cfg == nil || !(jobs || l.IdempotencyKeys) {
		return
	}
	// Jobs and keys need JetStream on the nodes the runner starts; a
	// deployment's configuration is its own.
	path, what := "load.idempotencyKeys", "idempotency keys are"
	if jobs {
		path, what = "load.kind", "jobs are"
	}
	switch {
	case !cfg.Global.Jobs.Enabled:
		d.errorf(find(root, path), path, "%s off in the hive configuration (hive.global.jobs.enabled: false)", what)
	case !cfg.Global.Persistence.Enabled:
		d.errorf(find(root, path), path, "%s served only with persistence (JetStream), which hive.global.persistence.enabled turns off", what)
	}
	if jobs && l.ResultTimeout == 0 {
		j := cfg.Global.Jobs
		l.ResultTimeout = time.Duration(j.MaxDeliveries+1) * (j.AckWait + l.Timeout)
	}
}

func (sc *Scenario) validateTimeline(d *decoder, root *yaml.Node) {
	faultIDs := map[string]int{} // id -> line
	killed := map[string]bool{}
	nFault := 0
	var prev time.Duration
	for i := range sc.Timeline {
		st := &sc.Timeline[i]
		path := fmt.Sprintf("timeline[%d]", i)
		at := find(root, path+".at")
		if at != nil {
			sc.checkAt(d, at, path+".at", st.At, sc.Load, prev)
			prev = max(prev, st.At)
		}
		nodePath := path + "." + string(st.Action) + ".node"
		if st.Action == "" {
			continue
		}
		if st.Node != "" && !sc.validNode(st.Node, st.Action != ActKill && st.Action != ActRestart) {
			d.errorf(lineNode(root, nodePath, st.Line), nodePath, "unknown node %q (%s)", st.Node, sc.nodeList(st.Action != ActKill && st.Action != ActRestart))
			continue
		}
		nodeLevel := st.Action == ActKill || st.Action == ActRestart ||
			st.Action == ActFault && (st.Fault.GetKind() == messages.FaultSpec_kill || st.Fault.GetKind() == messages.FaultSpec_partition)
		if nodeLevel && sc.Nodes < 2 {
			what := string(st.Action)
			if st.Action == ActFault {
				what = "a " + st.Fault.GetKind().String() + " fault"
			}
			d.errorf(lineNode(root, path, st.Line), path, "%s needs nodes >= 2: a single node embeds the NATS server, which would go down with it", what)
			continue
		}
		switch st.Action {
		case ActFault:
			nFault++
			f := st.Fault
			if f.Id == "" {
				f.Id = "f" + strconv.Itoa(nFault)
			} else if !tokenRE.MatchString(f.Id) {
				d.errorf(lineNode(root, path+".fault.id", st.Line), path+".fault.id", "%q may hold only letters, digits, - and _", f.Id)
			}
			if line, dup := faultIDs[f.Id]; dup {
				d.errorf(lineNode(root, path+".fault.id", st.Line), path+".fault.id", "fault id %q is used twice (first at line %d)", f.Id, line)
			}
			faultIDs[f.Id] = st.Line
			if f.Model != "" && f.Model != "*" {
				sc.checkModel(d, root, path+".fault.model", f.Model)
			}
			if f.Kind == messages.FaultSpec_kill {
				killed[st.Node] = true
			}
		case ActClear:
			if st.ClearID != "" {
				if _, ok := faultIDs[st.ClearID]; !ok {
					d.errorf(lineNode(root, path+".clear.id", st.Line), path+".clear.id", "no earlier fault has id %q (%s)", st.ClearID, idList(faultIDs))
				}
			}
		case ActAdmin:
			if st.Admin.GetModel() != "" {
				sc.checkModel(d, root, path+".admin.model", st.Admin.GetModel())
			}
		case ActKill:
			if killed[st.Node] {
				d.errorf(lineNode(root, path, st.Line), path, "node %s is already down: restart it first", st.Node)
			}
			killed[st.Node] = true
		case ActRestart:
			if !killed[st.Node] {
				d.errorf(lineNode(root, path, st.Line), path, "node %s is not down: an earlier step must kill it", st.Node)
			}
			killed[st.Node] = false
		}
	}
}

// checkAt checks a step's offset against the load and the previous step.
func (sc *Scenario) checkAt(d *decoder, n *yaml.Node, path string, at time.Duration, l Load, prev time.Duration) {
	switch {
	case l.Duration > 0 && at >= l.Duration:
		d.errorf(n, path, "%s is past the end of the load (load.duration %s)", at, l.Duration)
	case at < l.Warmup:
		d.errorf(n, path, "%s is within the warmup (load.warmup %s): steady state must be measured before the first step", at, l.Warmup)
	case at < prev:
		d.errorf(n, path, "%s is before the previous step's %s: list the steps in time order", at, prev)
	}
}

func (sc *Scenario) validateShort(d *decoder, root *yaml.Node) {
	s := sc.Short
	warmup := sc.Load.Warmup
	if s.Warmup != nil {
		warmup = *s.Warmup
	}
	if s.Duration > 0 && warmup >= s.Duration {
		d.errorf(lineNode(root, "short.duration", s.Line), "short.duration", "%s must be longer than the warmup (%s)", s.Duration, warmup)
		return
	}
	if len(s.Steps) != len(sc.Timeline) {
		d.errorf(lineNode(root, "short.timeline", s.Line), "short.timeline", "has %d step(s) but the timeline has %d: give one {at} per step, in order", len(s.Steps), len(sc.Timeline))
		return
	}
	short := Load{Duration: s.Duration, Warmup: warmup}
	var prev time.Duration
	for i, st := range s.Steps {
		path := fmt.Sprintf("short.timeline[%d]", i)
		sc.checkAt(d, lineNode(root, path+".at", st.Line), path+".at", st.At, short, prev)
		prev = max(prev, st.At)
		if st.Duration != nil {
			orig := sc.Timeline[i]
			switch {
			case orig.Action == ActFault && orig.Fault.GetKind() == messages.FaultSpec_kill,
				orig.Action != ActFault && !(orig.Action == ActAdmin && orig.Command == "breaker_open"):
				d.errorf(lineNode(root, path+".duration", st.Line), path+".duration", "step %d (%s) has no duration to override", i, orig.Action)
			case orig.Action == ActFault && orig.Fault.GetKind() == messages.FaultSpec_partition && *st.Duration <= 0:
				d.errorf(lineNode(root, path+".duration", st.Line), path+".duration", "a partition needs a duration > 0")
			}
		}
	}
}

// validNode reports whether name is a node of the scenario, or "all" when
// all is allowed.
func (sc *Scenario) validNode(name string, all bool) bool {
	if name == "all" {
		return all
	}
	for i := 1; i <= sc.Nodes; i++ {
		if name == NodeName(i) {
			return true
		}
	}
	return false
}

func (sc *Scenario) nodeList(all bool) string {
	var names []string
	if all {
		names = append(names, "all")
	}
	for i := 1; i <= sc.Nodes; i++ {
		names = append(names, NodeName(i))
	}
	return fmt.Sprintf("nodes: %d, so known: %s", sc.Nodes, strings.Join(names, ", "))
}

func idList(ids map[string]int) string {
	if len(ids) == 0 {
		return "no fault is declared before it"
	}
	return "known: " + strings.Join(sortedKeys(ids), ", ")
}

// checkModel records a problem when model is not one of hive.models.
func (sc *Scenario) checkModel(d *decoder, root *yaml.Node, path, model string) {
	if sc.Hive.Config == nil {
		return // hive.models is missing or invalid, which is reported already
	}
	if _, ok := sc.Hive.Config.Models[model]; ok {
		return
	}
	known := make([]string, 0, len(sc.Hive.Config.Models))
	for name := range sc.Hive.Config.Models {
		known = append(known, name)
	}
	slices.Sort(known)
	d.errorf(find(root, path), path, "unknown model %q (hive.models has %s)", model, strings.Join(known, ", "))
}

// validateHive marshals hive.global and hive.models into the two files a
// node reads and loads them with the config package, so a scenario is held
// to the node's own rules; each problem is reported at its line in the
// scenario.
func validateHive(d *decoder, h *hiveNodes) Hive {
	var out Hive
	if h.global != nil && !yamlnode.IsNull(h.global) {
		b, err := yaml.Marshal(h.global)
		if err != nil {
			d.errorf(h.global, "hive.global", "cannot be written back as YAML: %v", err)
			return out
		}
		out.Global = b
	}
	doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: "models"}, h.models}}
	b, err := yaml.Marshal(doc)
	if err != nil {
		d.errorf(h.models, "hive.models", "cannot be written back as YAML: %v", err)
		return out
	}
	out.Models = b
	cfg, err := config.Parse(config.GlobalFile, out.Global, config.ModelsFile, out.Models)
	if err == nil {
		out.Config = cfg
		return out
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var ce *config.Error
		if !errors.As(e, &ce) {
			d.errorf(h.models, "hive", "%v", e)
			continue
		}
		base, prefix, key := h.models, "hive.models", strings.TrimPrefix(strings.TrimPrefix(ce.Key, "models"), ".")
		if ce.File == config.GlobalFile {
			base, prefix, key = h.global, "hive.global", ce.Key
		}
		path := prefix
		if key != "" {
			path = prefix + "." + key
		}
		n := find(base, key)
		if n == nil || key == "" {
			n = base
		}
		d.errorf(n, path, "%s", ce.Msg)
	}
	return out
}

// find returns the value node at a key path ("load.mix[0].model") under
// root, or nil when the path is not in the file.
func find(root *yaml.Node, path string) *yaml.Node {
	n, _ := walk(root, path)
	return n
}

// lineOf returns the line of the deepest key of path present under root.
func lineOf(root *yaml.Node, path string) int {
	_, line := walk(root, path)
	return line
}

// lineNode is a node at path's line, or at fallback when path is absent.
func lineNode(root *yaml.Node, path string, fallback int) *yaml.Node {
	if n := find(root, path); n != nil {
		return n
	}
	return &yaml.Node{Line: fallback}
}

func walk(root *yaml.Node, path string) (*yaml.Node, int) {
	n := yamlnode.Resolve(root)
	if n == nil {
		return nil, 0
	}
	line := n.Line
	if path == "" {
		return n, line
	}
	for seg := range strings.SplitSeq(path, ".") {
		key, idx := seg, -1
		if i := strings.IndexByte(seg, '['); i >= 0 && strings.HasSuffix(seg, "]") {
			key = seg[:i]
			v, err := strconv.Atoi(seg[i+1 : len(seg)-1])
			if err != nil {
				return nil, line
			}
			idx = v
		}
		if key != "" {
			if n.Kind != yaml.MappingNode {
				return nil, line
			}
			var next *yaml.Node
			for j := 0; j+1 < len(n.Content); j += 2 {
				if k := yamlnode.Resolve(n.Content[j]); k.Value == key {
					next, line = yamlnode.Resolve(n.Content[j+1]), k.Line
					break
				}
			}
			if next == nil {
				return nil, line
			}
			n = next
		}
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return nil, line
			}
			n = yamlnode.Resolve(n.Content[idx])
			line = n.Line
		}
	}
	return n, line
}
