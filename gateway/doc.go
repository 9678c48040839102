// Package gateway is Hive's HTTP face: liveness and readiness now; the
// OpenAI-compatible endpoint, /metrics and the dashboard as they land.
//
// Handlers decode and forward; they hold no model state. Everything here is
// safe for concurrent use by net/http.
package gateway
