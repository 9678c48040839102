package chaos

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Files Report.WriteFiles writes into the output directory.
const (
	ResultsFile  = "results.json"   // objectives, summary, steps, disruptions, events, per-second series
	RequestsFile = "requests.jsonl" // one line per request
	TimelineFile = "timeline.svg"   // success rate, latency, breaker bands, disruptions
	ReportFile   = "report.txt"     // the table Run printed
)

// Report is the outcome of a run: the objectives measured on what was
// recorded.
type Report struct {
	Scenario    string
	File        string
	Description string
	SteadyState string
	Short       bool
	Target      string    // what ran: "1 hive node started by the runner", or the URL of a deployment
	Started     time.Time // when the load started
	Out         string    // the output directory, once written
	Models      []string  // the models of the hive configuration, for the breaker bands
	Nodes       []string  // the nodes seen or started
	Load        Load
	Interrupted bool   // the run was stopped before its end (Ctrl-C)
	Err         string // why the run could not complete; "" when it did
	Results     []Result
	Recording   *Recording
}

// Passed reports whether the run completed and every objective passed.
func (r *Report) Passed() bool {
	if r.Err != "" || r.Interrupted || len(r.Results) == 0 {
		return false
	}
	for _, res := range r.Results {
		if !res.Pass {
			return false
		}
	}
	return true
}

// summary counts the scored requests.
type summary struct {
	Requests  int            `json:"requests"`
	OK        int            `json:"ok"`
	Errors    int            `json:"errors"`
	Lost      int            `json:"lost"`
	Truncated int            `json:"truncated"`
	Streamed  int            `json:"streamed"`
	Warmup    int            `json:"warmup_requests"`
	Abandoned int            `json:"abandoned"`
	ByClass   map[string]int `json:"errors_by_class,omitempty"`
	ServedBy  map[string]int `json:"served_by,omitempty"`
	ByNode    map[string]int `json:"by_node,omitempty"`
	Retried   int            `json:"retried"`  // sent more than once (load.retry)
	Replayed  int            `json:"replayed"` // answered with a repeated key's first answer
	Jobs      *jobSummary    `json:"jobs,omitempty"`
}

// jobSummary counts the jobs of a load of jobs, warmup included, as the
// job objectives do.
type jobSummary struct {
	Submitted   int `json:"submitted"`
	Accepted    int `json:"accepted"`
	Duplicates  int `json:"duplicates"` // a retried submission answered as the first one's
	Done        int `json:"done"`
	Failed      int `json:"failed"`
	Lost        int `json:"lost"`
	Redelivered int `json:"redelivered"` // deliveries > 1
	Conflicting int `json:"conflicting"` // more than one distinct result
	// ViaGet counts the jobs whose end the runner learnt by reading their
	// record, with no announcement received by then.
	ViaGet int `json:"via_get"`
}

func (r *Report) summary() summary {
	s := summary{ByClass: map[string]int{}, ServedBy: map[string]int{}, ByNode: map[string]int{}}
	for i := range r.Recording.Requests {
		q := &r.Recording.Requests[i]
		if q.Outcome != Abandoned {
			if q.Sends > 1 {
				s.Retried++
			}
			if q.Replayed {
				s.Replayed++
			}
			if q.Job != nil {
				s.countJob(q)
			}
		}
		switch {
		case q.Outcome == Abandoned:
			s.Abandoned++
			continue
		case q.Warmup:
			s.Warmup++
			continue
		}
		s.Requests++
		if q.Streamed {
			s.Streamed++
		}
		switch q.Outcome {
		case OK:
			s.OK++
			s.ServedBy[q.ServedBy]++
		case Lost:
			s.Lost++
		case Truncated:
			s.Truncated++
		default:
			s.Errors++
		}
		if q.Outcome != OK {
			s.ByClass[q.ErrorClass]++
		}
		if q.Node != "" {
			s.ByNode[q.Node]++
		}
	}
	return s
}

func (s *summary) countJob(q *Request) {
	if s.Jobs == nil {
		s.Jobs = &jobSummary{}
	}
	j, js := q.Job, s.Jobs
	js.Submitted++
	if j.ID == "" {
		return
	}
	js.Accepted++
	switch {
	case q.Outcome == Lost:
		js.Lost++
	case q.Outcome == OK || q.Outcome == Truncated:
		js.Done++
	default:
		js.Failed++
	}
	if j.Duplicate {
		js.Duplicates++
	}
	if j.Deliveries > 1 {
		js.Redelivered++
	}
	if j.Results > 1 {
		js.Conflicting++
	}
	if j.Via == "get" {
		js.ViaGet++
	}
}

// WriteTable prints the run: what ran, the timeline as applied, and one
// line per objective with its target, the measured value and PASS or FAIL.
func (r *Report) WriteTable(w io.Writer) error {
	b := &strings.Builder{}
	short := ""
	if r.Short {
		short = " (short version)"
	}
	rec := r.Recording
	fmt.Fprintf(b, "scenario %s%s: %s\n", r.Scenario, short, r.Target)
	ran := "did not start"
	if rec.Elapsed > 0 {
		ran = "ran " + rec.Elapsed.Round(time.Millisecond).String()
	}
	fmt.Fprintf(b, "load: %s for %s (warmup %s), %s\n", loadString(r.Load), r.Load.Duration, r.Load.Warmup, ran)
	s := r.summary()
	fmt.Fprintf(b, "requests: %d scored: %d ok, %d errors, %d lost, %d truncated (%d streamed)", s.Requests, s.OK, s.Errors, s.Lost, s.Truncated, s.Streamed)
	if s.Abandoned > 0 {
		fmt.Fprintf(b, "; %d abandoned", s.Abandoned)
	}
	if s.Retried > 0 {
		fmt.Fprintf(b, "; %d sent more than once", s.Retried)
	}
	if s.Replayed > 0 {
		fmt.Fprintf(b, "; %d answered with their key's first answer", s.Replayed)
	}
	b.WriteString("\n")
	if j := s.Jobs; j != nil {
		fmt.Fprintf(b, "jobs (warmup included): %d submitted, %d accepted (%d retries answered as duplicates), %d done, %d failed, %d lost\n",
			j.Submitted, j.Accepted, j.Duplicates, j.Done, j.Failed, j.Lost)
		fmt.Fprintf(b, "  %d delivered more than once, %d with two different results, %d ends read from the record before any announcement\n",
			j.Redelivered, j.Conflicting, j.ViaGet)
	}
	if len(s.ServedBy) > 0 {
		fmt.Fprintf(b, "served by: %s\n", countList(s.ServedBy))
	}
	if len(s.ByClass) > 0 {
		fmt.Fprintf(b, "failures: %s\n", countList(s.ByClass))
	}
	if len(rec.Steps) > 0 {
		b.WriteString("timeline:\n")
		for _, st := range rec.Steps {
			res := "ok"
			if st.Err != "" {
				res = "FAILED: " + st.Err
			}
			fmt.Fprintf(b, "  %8s  %s: %s\n", fmtOffset(st.Applied), st.Step, res)
		}
	}
	for _, d := range rec.Disruptions {
		end := "until the end"
		if d.Ended {
			end = "to " + fmtOffset(d.End)
		}
		fmt.Fprintf(b, "  disruption %s (%s): %s %s\n", d.ID, d.Kind, fmtOffset(d.Start), end)
	}
	if r.Err != "" {
		fmt.Fprintf(b, "RUN ERROR: %s\n", r.Err)
	}
	if r.Interrupted {
		b.WriteString("INTERRUPTED: the report covers the part that ran\n")
	}
	if r.Err != "" && len(rec.Requests) == 0 {
		b.WriteString("\nFAILED: the run could not start, so no objective was measured\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OBJECTIVE\tTARGET\tMEASURED\tRESULT\tNOTE")
	failed := 0
	for _, res := range r.Results {
		verdict := "PASS"
		if !res.Pass {
			verdict = "FAIL"
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", res.Objective.Metric, res.Objective.TargetString(), res.MeasuredString(), verdict, res.Note)
	}
	_ = tw.Flush()
	switch {
	case r.Passed():
		fmt.Fprintf(b, "\nPASSED: %d of %d objectives\n", len(r.Results), len(r.Results))
	default:
		fmt.Fprintf(b, "\nFAILED: %d of %d objectives failed\n", failed, len(r.Results))
	}
	if r.Out != "" {
		fmt.Fprintf(b, "results in %s\n", r.Out)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func loadString(l Load) string {
	what := "requests"
	if l.Kind == LoadJobs {
		what = "jobs"
	}
	mode := fmt.Sprintf("%g %s/s", l.Rate, what)
	if l.Concurrency > 0 {
		mode = fmt.Sprintf("%d %s in flight", l.Concurrency, what)
	}
	if l.IdempotencyKeys {
		mode += ", a key each"
	}
	if l.Retry.After > 0 {
		mode += fmt.Sprintf(", sent again after %s (at most %d times)", l.Retry.After, l.Retry.Attempts)
	}
	var mix []string
	for _, m := range l.Mix {
		mix = append(mix, fmt.Sprintf("%s x%g", m.Model, m.Weight))
	}
	if l.StreamShare > 0 {
		mode += fmt.Sprintf(", %g%% streamed", l.StreamShare*100)
	}
	return mode + " to " + strings.Join(mix, ", ")
}

func countList(m map[string]int) string {
	keys := sortedKeys(m)
	slices.SortStableFunc(keys, func(a, b string) int { return m[b] - m[a] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		name := k
		if name == "" {
			name = "?"
		}
		parts[i] = fmt.Sprintf("%s %d", name, m[k])
	}
	return strings.Join(parts, ", ")
}

func fmtOffset(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

// jsonReport is results.json.
type jsonReport struct {
	Scenario    string           `json:"scenario"`
	File        string           `json:"file"`
	Description string           `json:"description"`
	SteadyState string           `json:"steady_state"`
	Short       bool             `json:"short"`
	Target      string           `json:"target"`
	Started     time.Time        `json:"started"`
	DurationS   float64          `json:"duration_s"`
	WarmupS     float64          `json:"warmup_s"`
	ElapsedS    float64          `json:"elapsed_s"`
	Passed      bool             `json:"passed"`
	Interrupted bool             `json:"interrupted"`
	Error       string           `json:"error,omitempty"`
	Objectives  []jsonResult     `json:"objectives"`
	Summary     summary          `json:"summary"`
	Steps       []jsonStep       `json:"steps"`
	Disruptions []jsonDisruption `json:"disruptions"`
	Events      []jsonEvent      `json:"events"`
	Series      []Second         `json:"series"`
}

type jsonResult struct {
	Objective string   `json:"objective"`
	Metric    string   `json:"metric"`
	Op        string   `json:"op"`
	Target    float64  `json:"target"`
	Value     *float64 `json:"value"` // null when it could not be measured
	Measured  string   `json:"measured"`
	Pass      bool     `json:"pass"`
	Note      string   `json:"note,omitempty"`
}

type jsonStep struct {
	AtS      float64  `json:"at_s"`
	AppliedS float64  `json:"applied_s"`
	DoneS    float64  `json:"done_s"`
	Action   string   `json:"action"`
	Step     string   `json:"step"`
	Acks     []string `json:"acks,omitempty"`
	Error    string   `json:"error,omitempty"`
}

type jsonDisruption struct {
	ID     string  `json:"id"`
	Kind   string  `json:"kind"`
	Node   string  `json:"node"`
	Model  string  `json:"model,omitempty"`
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
	Ended  bool    `json:"ended"`
}

type jsonEvent struct {
	TS     float64 `json:"t_s"`
	Kind   string  `json:"kind"`
	Node   string  `json:"node,omitempty"`
	Model  string  `json:"model,omitempty"`
	From   string  `json:"from,omitempty"`
	To     string  `json:"to,omitempty"`
	Detail string  `json:"detail,omitempty"`
	Line   string  `json:"line"`
}

type jsonRequest struct {
	ID        string    `json:"id"`
	Model     string    `json:"model"`
	StartMs   float64   `json:"start_ms"`
	LatencyMs float64   `json:"latency_ms"`
	Outcome   Outcome   `json:"outcome"`
	Class     string    `json:"class,omitempty"`
	Code      string    `json:"code,omitempty"`
	ServedBy  string    `json:"served_by,omitempty"`
	Node      string    `json:"node,omitempty"`
	Attempts  []Attempt `json:"attempts,omitempty"`
	Stream    bool      `json:"stream,omitempty"`
	Tools     bool      `json:"tools,omitempty"`
	// Continuation is what became of a stream cut after its text went out.
	Continuation string   `json:"continuation,omitempty"`
	Chunks       int      `json:"chunks,omitempty"`
	Content      string   `json:"content,omitempty"` // what a truncated request got
	Warmup       bool     `json:"warmup,omitempty"`
	Sends        int      `json:"sends,omitempty"`
	Replayed     bool     `json:"replayed,omitempty"`
	Job          *jsonJob `json:"job,omitempty"`
}

type jsonJob struct {
	ID         string  `json:"id,omitempty"`
	AcceptedMs float64 `json:"accepted_ms,omitempty"` // from the start of the load
	Duplicate  bool    `json:"duplicate,omitempty"`
	Deliveries int     `json:"deliveries,omitempty"`
	Results    int     `json:"results,omitempty"`
	Announced  int     `json:"announced,omitempty"`
	Via        string  `json:"via,omitempty"`
}

func (r *Report) json() jsonReport {
	rec := r.Recording
	out := jsonReport{
		Scenario: r.Scenario, File: r.File, Description: r.Description, SteadyState: r.SteadyState,
		Short: r.Short, Target: r.Target, Started: r.Started,
		DurationS: rec.Duration.Seconds(), WarmupS: rec.Warmup.Seconds(), ElapsedS: rec.end().Seconds(),
		Passed: r.Passed(), Interrupted: r.Interrupted, Error: r.Err,
		Objectives: []jsonResult{}, Summary: r.summary(), Steps: []jsonStep{}, Disruptions: []jsonDisruption{},
		Events: []jsonEvent{}, Series: rec.Series(),
	}
	for _, res := range r.Results {
		jr := jsonResult{Objective: res.Objective.Text, Metric: res.Objective.Metric, Op: res.Objective.Op,
			Target: res.Objective.Target, Measured: res.MeasuredString(), Pass: res.Pass, Note: res.Note}
		if res.Measured {
			v := res.Value
			jr.Value = &v
		}
		out.Objectives = append(out.Objectives, jr)
	}
	for _, st := range rec.Steps {
		out.Steps = append(out.Steps, jsonStep{AtS: st.Step.At.Seconds(), AppliedS: st.Applied.Seconds(), DoneS: st.Done.Seconds(),
			Action: string(st.Step.Action), Step: st.Step.String(), Acks: st.Acks, Error: st.Err})
	}
	for _, d := range rec.Disruptions {
		out.Disruptions = append(out.Disruptions, jsonDisruption{ID: d.ID, Kind: d.Kind, Node: d.Node, Model: d.Model,
			StartS: d.Start.Seconds(), EndS: d.End.Seconds(), Ended: d.Ended})
	}
	for _, e := range rec.Events {
		out.Events = append(out.Events, jsonEvent{TS: e.At.Seconds(), Kind: e.Kind, Node: e.Node, Model: e.Model,
			From: e.From, To: e.To, Detail: e.Detail, Line: e.Line})
	}
	return out
}

// WriteJSON writes results.json's content to w.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r.json())
}

// WriteRequests writes one JSON line per request to w.
func (r *Report) WriteRequests(w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for i := range r.Recording.Requests {
		q := &r.Recording.Requests[i]
		jr := jsonRequest{ID: q.ID, Model: q.Model, StartMs: ms(q.Start), LatencyMs: ms(q.Latency()),
			Outcome: q.Outcome, Class: q.ErrorClass, Code: q.ErrorCode, ServedBy: q.ServedBy, Node: q.Node,
			Attempts: q.Attempts, Stream: q.Streamed, Tools: q.Tools, Continuation: q.Continuation, Chunks: q.Chunks, Content: q.Content, Warmup: q.Warmup, Sends: q.Sends, Replayed: q.Replayed}
		if j := q.Job; j != nil {
			jr.Job = &jsonJob{ID: j.ID, Duplicate: j.Duplicate, Deliveries: j.Deliveries, Results: j.Results, Announced: j.Announced, Via: j.Via}
			if j.ID != "" {
				jr.Job.AcceptedMs = ms(j.Accepted)
			}
		}
		if err := enc.Encode(jr); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// WriteFiles writes results.json, requests.jsonl, timeline.svg and
// report.txt into dir, which it creates, and sets r.Out.
func (r *Report) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	r.Out = dir
	write := func(name string, fn func(io.Writer) error) error {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			_ = f.Close()
			return fmt.Errorf("write %s: %w", name, err)
		}
		return f.Close()
	}
	for _, f := range []struct {
		name string
		fn   func(io.Writer) error
	}{{ResultsFile, r.WriteJSON}, {RequestsFile, r.WriteRequests}, {TimelineFile, r.WriteSVG}, {ReportFile, r.WriteTable}} {
		if err := write(f.name, f.fn); err != nil {
			return err
		}
	}
	return nil
}
