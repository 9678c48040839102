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
