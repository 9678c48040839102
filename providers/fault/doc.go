// Package fault is the fault layer chaos injects: a Registry of the faults
// active on one node, and Wrap, which puts them in front of any provider
// (sim, openai, anthropic, exec), so a chaos run exercises the same paths a
// real failure takes.
//
// Every call of a wrapped provider draws its faults when it starts: those
// whose window is open (from start_after_ms after injection, for
// duration_ms, or until cleared), whose model matches ("" and "*" match
// every model) and whose probability wins a draw. Latency faults add up and
// come first; then the first failing fault in injection order (error,
// rate_limit, connection_reset, hang, panic) replaces the call; then the
// first stream fault (cut_stream, stall_stream, malformed_chunk) acts on the
// answer. Errors are *providers.Error with the class a real provider would
// give, so breakers, retries and fallbacks treat them as the real thing.
// Node-level kinds (partition, kill) are kept in the Registry, so they are
// listed and cleared like the others, but the node carries them out, not
// the providers.
//
// Check and Describe are what a FaultSpec means: which are valid (the node
// refuses the others before they reach a Registry) and the one line the log
// and the audit trail show.
//
// Imports: messages and providers. A Registry is safe for concurrent use;
// it starts no goroutine and reads the clock it is given. A wrapped
// provider is as safe as the one it wraps and honours its context as the
// providers do; its streams start no goroutine either.
package fault
