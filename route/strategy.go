package route

// Strategy names how a request moves through a model and its fallbacks.
type Strategy string

// Fallback strategies.
const (
	// Sequential tries the model, then each fallback in order, with
	// same-model retries as the error class allows.
	Sequential Strategy = "sequential"
	// Parallel races up to MaxParallel candidates; the first success wins
	// and the others are cancelled (not counted as model failures).
	Parallel Strategy = "parallel"
	// Hedged starts the model, and the next candidate too if no answer came
	// within the hedge delay and the retry budget allows.
	Hedged Strategy = "hedged"
	// Weighted orders candidates by smooth weighted choice over weight x
	// health score x ramp share.
	Weighted Strategy = "weighted"
	// Random tries the candidates in a random order.
	Random Strategy = "random"
)

// Valid reports whether s is one of the strategies above.
func (s Strategy) Valid() bool {
	switch s {
	case Sequential, Parallel, Hedged, Weighted, Random:
		return true
	}
	return false
}

// reorders reports whether s orders the candidates per request (so the
// members' own order cannot be shared).
func (s Strategy) reorders() bool { return s == Weighted || s == Random }
