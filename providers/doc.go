// Package providers defines the one small interface every model backend
// implements, and the classification of every failure into a
// messages.ErrorClass. Backends live in sub-packages: sim (deterministic
// simulated models for tests and demos); openai, anthropic and exec follow.
//
// Providers may import messages only. A Provider is called from many
// goroutines at once and must be safe for that; it must return promptly when
// its context ends.
package providers
