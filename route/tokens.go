package route

import "github.com/cmmv-hive/resilience/messages"

// The prompt-token estimate of the pre-call check (docs/context-windows.md,
// "The estimate"). A real tokenizer costs too much per request (the BPE
// ones of tiktoken take 0.5 to 0.7 ms for 4 KB, BenchmarkTiktoken),
// and no one tokenizer is right for every upstream anyway. The estimate
// sums a weight per byte by the byte's kind: letters, digits, spaces, line
// breaks, punctuation, and the first byte of each non-ASCII character by
// its length (the others weigh nothing); a byte that repeats the one
// before it (runs of spaces, "-----") or a 3-byte character that repeats
// the one before (a console box's "─────") weighs 1/8, since BPE merges
// such runs into few tokens (letters and digits keep their weight). The
// weights were fitted by least squares on relative error against
// o200k_base over English prose, Go, YAML and eight other languages, then
// scaled by 0.9, so that the estimate is meant as a lower bound: the router skips a model only when even this
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
	// Every byte adds its weight; a byte equal to the one before, or a
	// 3-byte character equal to the one before (a box's ─), takes off its
	// run discount, since BPE merges such runs. Eight bytes at a time: a
	// block in which no byte equals the one before it and no three bytes in
	// a row equal the three before them (most text) only adds weights; the
	// others are looked at byte by byte.
	var n, off uint64
	i := 0
	for ; i < min(3, len(s)); i++ {
		n += uint64(byteWeights[s[i]])
		if i > 0 {
			off += repeat(s, i)
		}
	}
	for ; i+8 <= len(s); i += 8 {
		w := load64(s, i)
		z1, z3 := zeroBytes(w^load64(s, i-1)), zeroBytes(w^load64(s, i-3))
		if z1|z3&(z3>>8)&(z3>>16) == 0 {
			n += uint64(byteWeights[s[i]]) + uint64(byteWeights[s[i+1]]) + uint64(byteWeights[s[i+2]]) + uint64(byteWeights[s[i+3]]) +
				uint64(byteWeights[s[i+4]]) + uint64(byteWeights[s[i+5]]) + uint64(byteWeights[s[i+6]]) + uint64(byteWeights[s[i+7]])
			continue
		}
		for j := i; j < i+8; j++ {
			n += uint64(byteWeights[s[j]])
			off += repeat(s, j)
		}
	}
	for ; i < len(s); i++ {
		n += uint64(byteWeights[s[i]])
		off += repeat(s, i)
	}
	return int((n - off + weightUnit/2) / weightUnit)
}

const (
	lows   = 0x0101010101010101
	highs  = 0x8080808080808080
	sevens = 0x7F7F7F7F7F7F7F7F
)

// zeroBytes returns 0x80 in each byte of v that is zero, and 0 in the
// others.
func zeroBytes(v uint64) uint64 {
	return ^((v&sevens + sevens) | v | sevens)
}

// load64 reads s[i:i+8] as a little-endian word.
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// repeat is the run discount of s[i] (i >= 1): the byte repeats the one
// before it, or starts a 3-byte character equal to the one before.
func repeat(s string, i int) uint64 {
	c := s[i]
	switch {
	case c == s[i-1]:
		return uint64(runDiscount[c])
	case c >= 0xE0 && i >= 3 && i+2 < len(s) && s[i-3] == c && s[i-2] == s[i+1] && s[i-1] == s[i+2]:
		return uint64(runDiscount[c])
	}
	return 0
}

// runDiscount is what a repeated byte weighs less: 7/8 of its weight,
// for anything but letters, digits and the bytes that weigh nothing or
// start a 2-byte character.
var runDiscount = func() (w [256]uint32) {
	for b := range 256 {
		c := byte(b)
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') && (c < 0x80 || c >= 0xE0) {
			w[b] = byteWeights[b] - byteWeights[b]/8
		}
	}
	return w
}()
