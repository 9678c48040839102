package resilience

import "github.com/cmmv-hive/resilience/messages"

// Policy is what Hive does about one error class (docs/policy.md, "Error
// classes and their policy").
type Policy struct {
	// CountsAgainstBreaker is true when the failure is the model's fault.
	CountsAgainstBreaker bool
	// RetrySame is how many times the same model may be retried for it.
	RetrySame int
	// RetryAfterOnly means the same model is retried only once its
	// Retry-After has passed, and only within the request's deadline.
	RetryAfterOnly bool
	// FailOver is true when the router should try the next candidate.
	FailOver bool
	// ForcesOpen marks failures that open the breaker at once for a long
	// time and raise an alert (bad credentials).
	ForcesOpen bool
	// PeerAtOnce marks failures that speak of the upstream itself, not of
	// one node's path to it: a breaker another node opened for one of
	// them is adopted at once by every node serving the same upstream.
	// Openings for other classes (connection, timeout: node-local) need a
	// second witness (see Witnesses).
	PeerAtOnce bool
}

// policies is the table; every class has a row.
var policies = [...]Policy{
	messages.ErrorClass_ok:             {},
	messages.ErrorClass_timeout:        {CountsAgainstBreaker: true, FailOver: true},
	messages.ErrorClass_connection:     {CountsAgainstBreaker: true, RetrySame: 1, FailOver: true},
	messages.ErrorClass_server_error:   {CountsAgainstBreaker: true, RetrySame: 1, FailOver: true, PeerAtOnce: true},
	messages.ErrorClass_overloaded:     {CountsAgainstBreaker: true, FailOver: true, PeerAtOnce: true},
	messages.ErrorClass_rate_limited:   {CountsAgainstBreaker: true, RetrySame: 1, RetryAfterOnly: true, FailOver: true, PeerAtOnce: true},
	messages.ErrorClass_auth:           {CountsAgainstBreaker: true, FailOver: true, ForcesOpen: true, PeerAtOnce: true},
	messages.ErrorClass_bad_request:    {},
	messages.ErrorClass_context_length: {},
	messages.ErrorClass_content_policy: {},
	messages.ErrorClass_cancelled:      {},
	messages.ErrorClass_malformed:      {CountsAgainstBreaker: true, RetrySame: 1, FailOver: true, PeerAtOnce: true},
	messages.ErrorClass_stream_cut:     {CountsAgainstBreaker: true, FailOver: true, PeerAtOnce: true},
	messages.ErrorClass_stream_stall:   {CountsAgainstBreaker: true, FailOver: true},
	// Raised by Hive itself, not by a model: the next candidate may serve.
	messages.ErrorClass_circuit_open: {FailOver: true},
	messages.ErrorClass_no_capacity:  {FailOver: true},
	messages.ErrorClass_all_failed:   {},
}

// PolicyFor returns the policy of class c. context_length fails over only to
// a model with a larger context and content_policy only when configured;
// callers that know those facts decide (route/limits.go,
// docs/context-windows.md), the table says no.
func PolicyFor(c messages.ErrorClass) Policy {
	if int(c) < 0 || int(c) >= len(policies) {
		return Policy{CountsAgainstBreaker: true, FailOver: true}
	}
	return policies[c]
}
