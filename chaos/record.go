package chaos

import (
	"slices"
	"time"
)

// Outcome is how a request ended, as the runner judged it.
type Outcome string

// The outcomes. Only OK is a success.
const (
	OK        Outcome = "ok"        // a complete answer
	Failed    Outcome = "error"     // an error reply, or a stream whose final chunk says incomplete
	Truncated Outcome = "truncated" // given as a success, but the content is not the whole answer
	Lost      Outcome = "lost"      // no reply (or no final chunk) within the timeout and a grace second
	Abandoned Outcome = "abandoned" // still in flight when the run was interrupted; not scored
)

// Error classes the runner gives to failures the node did not classify.
const (
	ClassNoResponders = "no_responders" // no node listened on hive.v1.infer
	ClassLost         = "lost"          // see Lost
	ClassTruncated    = "truncated"     // see Truncated
	ClassTransport    = "transport"     // the runner's own connection failed
	ClassUndecodable  = "undecodable"   // a reply that does not decode
)

// Request is one request of the load. Times are offsets from the start of
// the load.
type Request struct {
	ID         string
	Model      string // the model requested
	Start, End time.Duration
	Outcome    Outcome
	ErrorClass string // the error's class; "" for OK
	ErrorCode  string
	ServedBy   string // the model that answered
	Node       string // the node that answered
	Attempts   []Attempt
	Streamed   bool
	Tools      bool // sent with a tools array (load.toolsShare)
	// Continuation is what the final chunk says became of a stream cut
	// after its text went out (complete, refused_tools ...); "" when none
	// was cut.
	Continuation string
	Chunks       int    // chunks received, for a streamed request
	Content      string // what a Truncated request got, its first 300 bytes
	Warmup       bool   // started during the warmup: recorded, not scored
	Sends        int    // times the request (a job's submission) was sent: above 1, retried
	Keyed        bool   // sent with an idempotency key of its own
	Replayed     bool   // the answer was a repeated key's replay of its first answer
	Job          *Job   // a job of a load of kind jobs; nil for a request
}

// Job is what the runner learnt of one job: its acceptance, and its
// record and announcements once it ended.
type Job struct {
	ID       string        // the job id JobAccepted gave; "" when no node accepted it
	Accepted time.Duration // when the submission was acknowledged (the job is stored)
	// Duplicate: a repeated submission was answered as the first one's
	// (a retry after a lost acknowledgement).
	Duplicate bool
	// Deliveries is the count of nodes that took the job, from its record
	// read after the load: above 1, a node died or stopped while running it
	// and another ran it again.
	Deliveries int
	// Results counts the distinct results seen for the job: in the
	// announcements on hive.v1.jobs.done.<id>, the record read when it
	// ended and the record read after the load. More than 1 means the job
	// was answered twice, differently.
	Results int
	// Announced counts the announcements received on hive.v1.jobs.done.<id>.
	Announced int
	Via       string // how the runner learnt its end: "done" (the announcement) or "get" (reading its record)
}

// Latency is how long the request took, or waited when it was lost.
func (r *Request) Latency() time.Duration { return r.End - r.Start }

// Attempt is one model call listed in a reply.
type Attempt struct {
	Model string `json:"model"`
	Node  string `json:"node,omitempty"`
	Class string `json:"class"` // error class, "ok" for a success, "skipped" when the router did not call the model
	// Continued is how the call continued a cut stream: prefill or
	// instruction; "" for one that continued nothing.
	Continued string `json:"continued,omitempty"`
}

// Event is one event received on hive.v1.events.>, or one the runner
// observed itself (kind "runner": a node exited, a node is serving).
type Event struct {
	At     time.Duration // when the runner received it
	Kind   string        // health, breaker, recovery, alert, admin or runner
	Node   string
	Model  string
	From   string // breaker and health: the state left
	To     string // breaker and health: the state entered
	Detail string // breaker: its reason (consecutive, peer...); recovery: its kind (restart, ramp_step...); alert: its state and rule
	Line   string // the event in one line, as hive-node audit prints it
}

// Disruption is a period during which the scenario broke something: a
// fault, a forced-open breaker or disabled model, a killed or partitioned
// node.
type Disruption struct {
	ID    string // the fault id, or the step's name (admin-3, kill-n2)
	Kind  string // the fault kind, the admin command, or "kill"
	Node  string // "all" or one node
	Model string // the model it hits; "*" for every model; "" for a whole node
	// Start is when it was in force: its step done (the nodes had
	// answered), plus the fault's startAfterMs.
	Start time.Duration
	// Sent is when its step was sent, plus startAfterMs: a node may act on
	// it, and publish the events it causes, before its answer arrives.
	// Zero means Start.
	Sent  time.Duration
	End   time.Duration // the end of the load when it never ended
	Ended bool          // ended before the end of the load
}

// from is when the disruption began, at the earliest: detection and
// failover are measured from it.
func (d Disruption) from() time.Duration {
	if d.Sent > 0 {
		return d.Sent
	}
	return d.Start
}

// nodeLevel reports whether the disruption takes a whole node away.
func (d Disruption) nodeLevel() bool { return d.Model == "" }

// active reports whether t falls within the disruption.
func (d Disruption) active(t time.Duration) bool { return t >= d.Start && t < d.End }

// hits reports whether the disruption affects model on node.
func (d Disruption) hits(model, node string) bool {
	if d.Model != "*" && d.Model != model {
		return false
	}
	return d.Node == "all" || node == "" || d.Node == node
}

// AppliedStep is a timeline step as the runner applied it.
type AppliedStep struct {
	Step    Step
	Applied time.Duration // when the runner sent it
	// Done is when the nodes had answered (the step is in force from
	// then: a node applies an inject or a command before it answers), or
	// the killed process had ended.
	Done time.Duration
	Acks []string // what each node answered, one line each
	Err  string   // why it failed; "" when it worked
}

// Recording is everything a run observed, the input of Evaluate.
type Recording struct {
	Duration    time.Duration // the load's planned duration
	Warmup      time.Duration
	Elapsed     time.Duration // how long the load ran: Duration, or less when interrupted
	Requests    []Request
	Events      []Event
	Disruptions []Disruption
	Steps       []AppliedStep
	// Breakers0 holds the breaker states ("<node>/<model>" -> state) at the
	// start, when they were not all closed (a deployment the runner did not
	// start); a missing key means closed.
	Breakers0 map[string]string
	// ModelCalls counts the calls the nodes' models admitted during the
	// run (warmup included), from the nodes' status before and after the
	// load, when ModelCallsCounted; ModelCallsNote says why it was not.
	ModelCalls        int64
	ModelCallsCounted bool
	ModelCallsNote    string
	// ProbeSamples are the nodes' probe counters read at the beginning and
	// the planned end of each fault of a model, in time order.
	ProbeSamples []ProbeSample
}

// scored returns the requests that count: after the warmup, not abandoned.
func (rec *Recording) scored() []*Request {
	out := make([]*Request, 0, len(rec.Requests))
	for i := range rec.Requests {
		r := &rec.Requests[i]
		if !r.Warmup && r.Outcome != Abandoned {
			out = append(out, r)
		}
	}
	return out
}

// end is when the load ended.
func (rec *Recording) end() time.Duration {
	if rec.Elapsed > 0 {
		return rec.Elapsed
	}
	return rec.Duration
}

// faultIntervals returns the disruptions' periods within the scored load,
// merged where they overlap, in time order.
func (rec *Recording) faultIntervals() [][2]time.Duration {
	var iv [][2]time.Duration
	for _, d := range rec.Disruptions {
		s, e := max(d.Start, rec.Warmup), min(d.End, rec.end())
		if e > s {
			iv = append(iv, [2]time.Duration{s, e})
		}
	}
	slices.SortFunc(iv, func(a, b [2]time.Duration) int { return int(a[0] - b[0]) })
	var merged [][2]time.Duration
	for _, x := range iv {
		if n := len(merged); n > 0 && x[0] <= merged[n-1][1] {
			merged[n-1][1] = max(merged[n-1][1], x[1])
			continue
		}
		merged = append(merged, x)
	}
	return merged
}
