// Package bustest runs in-process NATS servers for tests, the way
// net/http/httptest runs HTTP servers: each test gets its own server on a
// random loopback port with JetStream on, and t.Cleanup shuts it down.
//
// Imports: nats.go and nats-server only (not bus, so that bus's own tests
// can use it). Everything it returns belongs to the test that asked for it.
package bustest
