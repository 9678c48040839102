// Package anthropic is a provider for Anthropic's Messages API: POST
// {BaseURL}/messages with the x-api-key and anthropic-version headers, plain
// or streamed as server-sent events, with every failure classified into a
// messages.ErrorClass (see providers.ClassifyHTTP; 529 and an
// overloaded_error event are overloaded).
//
// Requests are translated: system (and OpenAI's developer) messages move to
// the top-level system field, joined by blank lines; assistant messages
// stay; every other role is sent as user. max_tokens is required by the API:
// a request that gives none gets Config.MaxTokens (1024 by default).
//
// What counts as a complete answer:
//   - A plain answer is complete when the body parses, whatever its
//     stop_reason: max_tokens is the limit the caller asked for. A refusal
//     stop_reason is content_policy.
//   - A streamed answer is complete at message_stop, or once a
//     message_delta with a stop_reason has been seen: it carries the final
//     usage and only message_stop may follow, so the stream ends there at
//     once and a body that ends without message_stop is still complete. A
//     body that ends before any stop_reason is stream_cut.
//
// Besides providers and messages it imports only providers' internal
// httpapi and sse: the HTTP call and event-stream plumbing that the HTTP
// backends share. A Model is safe for concurrent use; a Stream is used by
// one goroutine (Close may come from another).
package anthropic
