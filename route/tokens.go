package route

import "github.com/cmmv-hive/resilience/messages"

// The prompt-token estimate of the pre-call check (docs/context-windows.md,
// "The estimate"). A real tokenizer costs too much per request (the BPE
// ones of tiktoken take 0.5 to 0.7 ms for 4 KB, BenchmarkTiktoken),
// and no one tokenizer is right for every upstream anyway. The estimate
// sums a weight per byte by the byte's kind: letters, digits, spaces, line
// breaks, punctuation, and the first byte of each non-ASCII character by
// its length (the others weigh nothing). The weights were fitted by least
// squares on relative error against o200k_base over English prose, Go,
// YAML and eight other languages, then scaled by 0.9, so that the estimate
// is meant as a lower bound: the router skips a model only when even this
// estimate does not fit, and a prompt that slips through is answered
// context_length by the model and fails over to a larger window.
// TestEstimateError checks the error against o200k_base and cl100k_base.

// weightUnit is the fixed-point unit of byteWeights: 1/256 token.
const weightUnit = 256

// Byte weights, in 1/256 token.
const (
	letterWeight  = 47  // a-z, A-Z: about 5.4 letters a token
	digitWeight   = 236 // numbers split into groups of one to three digits
	spaceWeight   = 64  // mostly merged with the word that follows
	breakWeight   = 56  // \n, \r, \t
	punctWeight   = 144 // other ASCII, control bytes included
	lead2Weight   = 64  // 2-byte characters: accented Latin, Cyrillic, Greek...
	lead3Weight   = 171 // 3-byte characters: CJK, most other scripts
	lead4Weight   = 230 // 4-byte characters: emoji, rare CJK (not measured)
	messageTokens = 4   // per message: OpenAI's chat format adds 3 and the role
	primingTokens = 3   // the reply's priming, once per request
)

// byteWeights maps every byte to its weight; continuation bytes of UTF-8
// (0x80-0xBF) weigh nothing, so a character counts once.
var byteWeights = func() (w [256]uint32) {
	for b := range 256 {
		switch c := byte(b); {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			w[b] = letterWeight
		case c >= '0' && c <= '9':
			w[b] = digitWeight
		case c == ' ':
			w[b] = spaceWeight
		case c == '\n' || c == '\r' || c == '\t':
			w[b] = breakWeight
		case c < 0x80:
			w[b] = punctWeight
		case c < 0xC0:
			w[b] = 0
		case c < 0xE0:
			w[b] = lead2Weight
		case c < 0xF0:
			w[b] = lead3Weight
		default:
			w[b] = lead4Weight
		}
	}
	return w
}()

// EstimateTokens returns the estimated prompt tokens of msgs: the
// estimate of each message's content (see EstimateText) plus the chat
// format's tokens per message and for the reply. It is meant to be at most
// the count of the OpenAI tokenizers (o200k_base, cl100k_base); the error
// measured is in docs/context-windows.md. It allocates nothing.
func EstimateTokens(msgs []*messages.ChatMessage) int {
	n := primingTokens
	for _, m := range msgs {
		n += messageTokens + EstimateText(m.GetContent())
	}
	return n
}

// EstimateText returns the estimated tokens of s (see EstimateTokens).
func EstimateText(s string) int {
	// Four sums, so that the additions do not wait on each other.
	var a, b, c, d uint64
	i := 0
	for ; i+4 <= len(s); i += 4 {
		a += uint64(byteWeights[s[i]])
		b += uint64(byteWeights[s[i+1]])
		c += uint64(byteWeights[s[i+2]])
		d += uint64(byteWeights[s[i+3]])
	}
	for ; i < len(s); i++ {
		a += uint64(byteWeights[s[i]])
	}
	return int((a + b + c + d + weightUnit/2) / weightUnit)
}
