package chaos

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cmmv-hive/resilience/internal/yamlnode"
)

// Objective is one line of a scenario's objectives: "<metric> <op> <target>",
// such as "success_rate >= 0.99" or "recovery_time <= 5s".
type Objective struct {
	Line   int
	Text   string  // as written
	Metric string  // a name of Metrics
	Op     string  // <=, >=, <, >, ==
	Target float64 // in the metric's unit: a share, seconds, a count or a ratio
}

// unit is how a metric's values are written and shown.
type unit int

const (
	unitRate      unit = iota // a share: 0.99 or 99%
	unitDuration              // "250ms", "5s", or milliseconds; held in seconds
	unitCount                 // a whole number
	unitRatio                 // a plain number: 0.9 or 90%
	unitPerSecond             // requests per second
)

// Metric describes one measurable quantity of a run.
type Metric struct {
	Name string
	unit unit
	Doc  string // what it measures, exactly
}

// windows qualify the windowed metrics: the whole scored load, steady state
// (before the first disruption), during disruptions, and after the last one.
var windows = []struct{ suffix, doc string }{
	{"", "over the scored load (after the warmup)"},
	{"_steady", "over requests started in steady state: after the warmup, before the first disruption"},
	{"_during_fault", "over requests started while a disruption was active"},
	{"_after_fault", "over requests started after the last disruption ended"},
}

// Metrics lists every metric an objective may name, in the order the README
// documents them.
var Metrics = buildMetrics()

func buildMetrics() []Metric {
	var out []Metric
	windowed := []Metric{
		{"success_rate", unitRate, "successful requests / requests (lost and truncated ones count as failures)"},
		{"error_rate", unitRate, "1 - success_rate"},
		{"p50_latency", unitDuration, "median latency of the successful requests"},
		{"p99_latency", unitDuration, "99th percentile latency of the successful requests"},
		{"throughput", unitPerSecond, "successful requests per second of the window"},
		{"fallback_rate", unitRate, "successful requests served by another model than the one requested / successful requests"},
	}
	for _, m := range windowed {
		for _, w := range windows {
			out = append(out, Metric{m.Name + w.suffix, m.unit, m.Doc + ", " + w.doc})
		}
	}
	return append(out,
		Metric{"throughput_ratio", unitRatio, "throughput_during_fault / throughput_steady"},
		Metric{"latency_ratio", unitRatio, "p50_latency_during_fault / p50_latency_steady"},
		Metric{"failover_time", unitDuration, "worst over disruptions of a model: from the step that began it being sent to the end of the first request for that model, started after that, that another model served"},
		Metric{"detection_time", unitDuration, "worst over disruptions of a model: from the step that began it being sent to the first event of that model's breaker opening (open or forced_open), on any node, before the disruption ended"},
		Metric{"recovery_time", unitDuration, "worst over disruptions that ended during the load (one followed at once by another of the same model or node counts as part of it): from the end to the later of the first success served by the model (or node) again and the closing of every breaker of the model that was not closed at the end"},
		Metric{"primary_attempts_during_outage", unitCount, "attempts on a disrupted model (as the replies list them; circuit_open refusals, which never reach the model, excluded) in requests started while a disruption of that model was active"},
		Metric{"probes_during_outage", unitCount, "probes of a disrupted model on the disrupted nodes during disruptions of it that ended during the load, from the nodes' probe counters read as each began and at its planned end"},
		Metric{"primary_calls_during_outage", unitCount, "primary_attempts_during_outage + probes_during_outage: every call that reached a disrupted model while it was disrupted"},
		Metric{"time_to_most_traffic", unitDuration, "worst over disruptions of a model that ended during the load (and were not continued): from the end to the start of the first request for the model from which on it served most of every 3 consecutive requests for it, up to its next disruption or the end of the load"},
		Metric{"model_attempts_during_outage", unitCount, "attempts on a disrupted model on any node (its upstream is shared; circuit_open refusals and skipped models, which never reach it, excluded) in requests started from the sending of the step that disrupted it to the disruption's end"},
		Metric{"truncated_successes", unitCount, "replies given as successes whose content is not the whole answer"},
		Metric{"streams", unitCount, "scored streamed requests"},
		Metric{"incomplete_streams", unitCount, "streamed requests whose final chunk said incomplete after some of the answer was sent (code stream_incomplete)"},
		Metric{"continued_streams", unitCount, "streamed requests that a model other than the cut one finished (continuation complete): rescued"},
		Metric{"lost_requests", unitCount, "requests with no reply within their timeout plus a grace second"},
		Metric{"lost_outside_node_faults", unitCount, "lost requests that were not in flight when a node was killed or cut from NATS"},
		Metric{"requests", unitCount, "scored requests"},
		Metric{"restarts", unitCount, "restart recovery events (a supervisor restarted a model actor)"},
		Metric{"breaker_opens", unitCount, "breaker transitions to open or forced_open"},
		Metric{"adopted_opens", unitCount, "breaker transitions to open with the reason peer: a node adopting another node's opening (cluster.shareBreakers)"},
		Metric{"half_opens", unitCount, "breaker transitions to half_open, on every node: the trial periods the deployment ran (with cluster.probeLease, one per ended open period cluster-wide)"},
		Metric{"lost_jobs", unitCount, "jobs a node accepted that had no result within load.resultTimeout of their acceptance (load of kind jobs; warmup included)"},
		Metric{"unaccepted_jobs", unitCount, "jobs whose submission no node acknowledged after every attempt (kind jobs; warmup included)"},
		Metric{"conflicting_results", unitCount, "jobs with more than one distinct result among their announcements on hive.v1.jobs.done.<id> and their record (kind jobs; warmup included)"},
		Metric{"redelivered_jobs", unitCount, "jobs whose record counts more than one delivery: a node died or stopped while it held the job and another ran it, so its model may have run more than once (kind jobs; warmup included)"},
		Metric{"retried_requests", unitCount, "requests, or job submissions, sent more than once by load.retry (warmup included)"},
		Metric{"model_calls", unitCount, "calls the nodes' models admitted during the run (warmup included), from every node's status before and after the load; not measured when a node restarted in between"},
		Metric{"extra_model_calls", unitCount, "model_calls minus the idempotency keys the load sent (one per request, warmup included): 0 when each key ran its model once, however often it was sent"},
	)
}

func metricByName(name string) (Metric, bool) {
	i := slices.IndexFunc(Metrics, func(m Metric) bool { return m.Name == name })
	if i < 0 {
		return Metric{}, false
	}
	return Metrics[i], true
}

var objectiveRE = regexp.MustCompile(`^\s*([A-Za-z0-9_]+)\s*(<=|>=|==|<|>)\s*(\S+)\s*$`)

// ParseObjective reads "<metric> <op> <target>".
func ParseObjective(s string) (Objective, error) {
	m := objectiveRE.FindStringSubmatch(s)
	if m == nil {
		return Objective{}, fmt.Errorf("%q is not \"<metric> <op> <target>\" (such as \"success_rate >= 0.99\"; op is <=, >=, <, > or ==)", s)
	}
	o := Objective{Text: strings.Join(m[1:], " "), Metric: m[1], Op: m[2]}
	met, ok := metricByName(o.Metric)
	if !ok {
		return o, fmt.Errorf("unknown metric %q (%s)", o.Metric, suggestMetric(o.Metric))
	}
	v, err := parseTarget(met.unit, m[3])
	if err != nil {
		return o, fmt.Errorf("%s: %w", o.Metric, err)
	}
	o.Target = v
	return o, nil
}

func suggestMetric(name string) string {
	best, bestDist := "", 4
	for _, m := range Metrics {
		if d := yamlnode.EditDistance(name, m.Name); d < bestDist {
			best, bestDist = m.Name, d
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return "see the README's Chaos section for the list"
}

func parseTarget(u unit, s string) (float64, error) {
	switch u {
	case unitDuration:
		d, err := parseDuration(s)
		if err != nil {
			return 0, err
		}
		return d.Seconds(), nil
	case unitCount:
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a whole number >= 0", s)
		}
		return float64(n), nil
	}
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, fmt.Errorf("%q is not a number >= 0", s)
	}
	if pct {
		v /= 100
	}
	if u == unitRate && v > 1 {
		return 0, fmt.Errorf("%q is a share: 0 to 1, or 0%% to 100%%", s)
	}
	return v, nil
}

func decodeObjectives(d *decoder, v *yaml.Node, path string) []Objective {
	var out []Objective
	seen := map[string]int{}
	d.list(v, path, func(_ int, item *yaml.Node, ip string) {
		s, ok := d.scalar(item, ip)
		if !ok {
			return
		}
		o, err := ParseObjective(s.Value)
		if err != nil {
			d.errorf(s, ip, "%v", err)
			return
		}
		key := o.Metric + " " + o.Op
		if line, dup := seen[key]; dup {
			d.errorf(s, ip, "%s %s is given twice (first at line %d)", o.Metric, o.Op, line)
			return
		}
		seen[key] = s.Line
		o.Line = s.Line
		out = append(out, o)
	})
	return out
}

// mergeObjectives returns base with each objective of over replacing the
// one of the same metric and operator, and the others of over added.
func mergeObjectives(base, over []Objective) []Objective {
	out := slices.Clone(base)
	for _, o := range over {
		i := slices.IndexFunc(out, func(b Objective) bool { return b.Metric == o.Metric && b.Op == o.Op })
		if i >= 0 {
			out[i] = o
		} else {
			out = append(out, o)
		}
	}
	return out
}

// formatValue renders v in the metric's unit.
func formatValue(name string, v float64) string {
	m, _ := metricByName(name)
	switch m.unit {
	case unitRate:
		return strconv.FormatFloat(v*100, 'f', 2, 64) + "%"
	case unitDuration:
		return formatSeconds(v)
	case unitCount:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case unitPerSecond:
		return strconv.FormatFloat(v, 'f', 1, 64) + "/s"
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

// formatSeconds renders a duration given in seconds, rounded for reading.
func formatSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d >= 10*time.Second:
		d = d.Round(100 * time.Millisecond)
	case d >= time.Second:
		d = d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		d = d.Round(100 * time.Microsecond)
	}
	return d.String()
}

// TargetString renders the objective's target as "<op> <value>".
func (o Objective) TargetString() string { return o.Op + " " + formatValue(o.Metric, o.Target) }

// holds reports whether measured v meets the objective.
func (o Objective) holds(v float64) bool {
	const eps = 1e-9
	switch o.Op {
	case "<=":
		return v <= o.Target+eps
	case ">=":
		return v >= o.Target-eps
	case "<":
		return v < o.Target
	case ">":
		return v > o.Target
	default:
		return math.Abs(v-o.Target) <= eps
	}
}
