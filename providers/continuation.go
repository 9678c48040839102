package providers

import (
	"strings"
	"unicode"

	"github.com/cmmv-hive/resilience/messages"
)

// Continuing a cut stream on another model (the router decides when: see
// route/continue.go). The request is the conversation plus the text the
// caller already has, as an assistant prefill or as an instruction.

// CodePrefillUnsupported is the Code of a bad_request whose upstream said
// it takes no assistant prefill (Anthropic's "This model does not support
// assistant message prefill"): the router then retries the continuation on
// that model as an instruction, where a plain bad_request would end it.
const CodePrefillUnsupported = "prefill_unsupported"

// PrefillRefusal reports whether an upstream's error message says it
// refuses an assistant prefill (or a final assistant message, or prefix).
func PrefillRefusal(msg string) bool {
	m := strings.ToLower(msg)
	refuses := strings.Contains(m, "not support") || strings.Contains(m, "unsupported") || strings.Contains(m, "not allowed")
	return refuses && (strings.Contains(m, "prefill") || strings.Contains(m, "prefix") ||
		strings.Contains(m, "final assistant") || strings.Contains(m, "last assistant"))
}

// The instruction that asks a model without prefill to go on from the
// partial answer, which sits between its two tags.
const (
	continueHead = "Your answer to the conversation above was cut off. Continue exactly where this partial answer stops: " +
		"do not repeat any of it, do not comment on it, write only what comes next.\n\n<partial_answer>\n"
	continueTail = "\n</partial_answer>"
)

// Continuation returns req asking for the rest of an answer of which sent
// reached the caller: req's messages followed by sent as a prefill (an
// assistant message marked prefix, its trailing white space trimmed, since
// Anthropic refuses one that ends with white space), or, without prefill,
// by a user turn asking to continue sent. req itself is not changed; the
// copy shares its messages.
func Continuation(req *messages.InferRequest, sent string, prefill bool) *messages.InferRequest {
	out := &messages.InferRequest{
		RequestId: req.GetRequestId(), Model: req.GetModel(), MaxTokens: req.GetMaxTokens(), Temperature: req.Temperature,
		Stream: req.GetStream(), DeadlineMs: req.GetDeadlineMs(), Priority: req.GetPriority(), Metadata: req.GetMetadata(),
	}
	out.Messages = make([]*messages.ChatMessage, 0, len(req.GetMessages())+1)
	out.Messages = append(out.Messages, req.GetMessages()...)
	if prefill {
		out.Messages = append(out.Messages, &messages.ChatMessage{Role: "assistant", Content: strings.TrimRightFunc(sent, unicode.IsSpace), Prefix: true})
	} else {
		out.Messages = append(out.Messages, &messages.ChatMessage{Role: "user", Content: continueHead + sent + continueTail})
	}
	return out
}

// ContinuationOf undoes Continuation, for backends that simulate a model
// (sim): the conversation before the continuation, the partial answer, and
// whether it came as a prefill; ok is false for any other request.
func ContinuationOf(req *messages.InferRequest) (conversation []*messages.ChatMessage, sent string, prefill, ok bool) {
	ms := req.GetMessages()
	if len(ms) == 0 {
		return nil, "", false, false
	}
	last := ms[len(ms)-1]
	if last.GetPrefix() && last.GetRole() == "assistant" {
		return ms[:len(ms)-1], last.GetContent(), true, true
	}
	if last.GetRole() == "user" {
		if rest, ok := strings.CutPrefix(last.GetContent(), continueHead); ok {
			if partial, ok := strings.CutSuffix(rest, continueTail); ok {
				return ms[:len(ms)-1], partial, false, true
			}
		}
	}
	return nil, "", false, false
}
