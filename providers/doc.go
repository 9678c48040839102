// Package providers defines the one small interface every model backend
// implements, and the classification of every failure into a
// messages.ErrorClass. Backends live in sub-packages: sim (deterministic
// simulated models for tests and demos), openai (any OpenAI-compatible chat
// completions API), anthropic (the Messages API) and exec (a command line,
// as CLI agents are run).
//
// What the backends share lives here: ClassifyHTTP, ClassifyEvent,
// ClassifyTransport and ParseRetryAfter turn upstream answers into classes
// (the table of docs/policy.md); HTTPClient is the pooled net/http client the HTTP
// backends use behind a proxy; WithDeadlines enforces a stream's three deadlines (first
// token, idle, total) on any backend's Stream. The HTTP backends also share
// two internal packages: httpapi (the call, a plain answer, an event stream
// and its Close) and sse (the event stream format).
//
// Providers may import messages only. A Provider is called from many
// goroutines at once and must be safe for that; it must return promptly when
// its context ends. A Stream is read by one goroutine, and Close may be
// called from another to end a Recv in progress.
package providers
