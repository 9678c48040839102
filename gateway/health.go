package gateway

import (
	"encoding/json"
	"net/http"
)

// Readiness reports whether the node can take requests, and why not.
type Readiness interface {
	// Ready returns nil when the node serves requests, or the reason it
	// does not (not connected to NATS, draining).
	Ready() error
}

// Health returns a handler for GET /healthz (the process is alive) and
// GET /readyz (it serves requests: 200, or 503 with the reason).
func Health(node string, r Readiness) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "node": node})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := r.Ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "node": node, "reason": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "node": node})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
