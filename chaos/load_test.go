package chaos

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestPickTools: toolsShare is the share of requests sent with tools;
// without it, none carries any.
func TestPickTools(t *testing.T) {
	mix := []Mix{{Model: "a", Weight: 1}, {Model: "b", Weight: 1}}
	tools := func(share float64) int {
		g := &loadGen{load: Load{Mix: mix, StreamShare: 0.5, ToolsShare: share}}
		rng := rand.New(rand.NewPCG(1, 7))
		n := 0
		for range 1000 {
			if _, _, tl := g.pick(rng); tl {
				n++
			}
		}
		return n
	}
	assert.Zero(t, tools(0))
	assert.Equal(t, 1000, tools(1))
	assert.InDelta(t, 500, tools(0.5), 60)
}

// TestJudgeSplice: a stream another model finished is whole when it is
// the answer (the same answer from both models), or, when the two answer
// differently, when the cut part begins the cut model's answer and the
// continuation ends the serving model's.
func TestJudgeSplice(t *testing.T) {
	same := func(string) string { return "one two three four" }
	g := &loadGen{expect: map[string]func(string) string{
		"a": same, "b": same,
		"x": func(p string) string { return "x says " + p },
		"y": func(p string) string { return "y says " + p },
	}}
	tests := []struct {
		name     string
		servedBy string
		by       []piece
		want     Outcome
	}{
		{"same answer, spliced once", "b", []piece{{"a", "one "}, {"a", "two "}, {"b", "three four"}}, OK},
		{"same answer, the space twice", "b", []piece{{"a", "one "}, {"a", "two "}, {"b", " three four"}}, Truncated},
		{"same answer, a word repeated", "b", []piece{{"a", "one "}, {"a", "two "}, {"b", "two three four"}}, Truncated},
		{"different answers, the rest of the serving one's", "y", []piece{{"x", "x says "}, {"y", "y says hi"}}, OK},
		{"different answers, the cut part not the cut model's", "y", []piece{{"x", "z says "}, {"y", "y says hi"}}, Truncated},
		{"different answers, the continuation not the serving model's", "y", []piece{{"x", "x says "}, {"y", "says nothing"}}, Truncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Request{ServedBy: tt.servedBy, Continuation: "complete"}
			var content string
			for _, p := range tt.by {
				content += p.text
			}
			g.judgeSplice(r, content, "hi", tt.by)
			assert.Equal(t, tt.want, r.Outcome)
		})
	}
}
