// Package openai is a provider for any OpenAI-compatible chat completions
// API: OpenAI, DeepSeek, xAI, Groq, vLLM, Ollama, LM Studio and the like. It
// speaks POST {BaseURL}/chat/completions with encoding/json, plain or
// streamed as server-sent events, and classifies every failure into a
// messages.ErrorClass (see providers.ClassifyHTTP).
//
// What counts as a complete answer:
//   - A plain answer is complete when the body parses, whatever its
//     finish_reason: "length" means the model stopped at the max_tokens the
//     caller asked for, which is the caller's choice, so it is a success.
//     "content_filter" and a refusal are content_policy failures.
//   - A streamed answer is complete when "data: [DONE]" arrives, or once a
//     chunk with a finish_reason has been seen: the model said it was done,
//     so what may follow (the usage chunk, [DONE]) is read if it comes, and
//     a body that then ends, with or without [DONE], is finalised at once as
//     complete. Once both the finish_reason and the usage have arrived the
//     stream ends without waiting for [DONE]. A body that ends before any
//     finish_reason is stream_cut: a truncated answer is never a success.
//
// Besides providers and messages it imports only providers' internal
// httpapi and sse: the HTTP call and event-stream plumbing that the HTTP
// backends share. A Model is safe for concurrent use; a Stream is used by
// one goroutine (Close may come from another).
package openai
