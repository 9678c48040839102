package gateway

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
)

type readiness struct{ err error }

func (r readiness) Ready() error { return r.err }

func TestHealth(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		err      error
		wantCode int
		wantBody string
	}{
		{"alive", "/healthz", errors.New("ignored"), 200, `{"node":"n1","status":"ok"}`},
		{"ready", "/readyz", nil, 200, `{"node":"n1","status":"ready"}`},
		{"not ready", "/readyz", errors.New("nats disconnected"), 503, `{"node":"n1","reason":"nats disconnected","status":"unavailable"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Health("n1", readiness{tt.err}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			assert.Equal(t, tt.wantCode, rec.Code)
			assert.JSONEq(t, tt.wantBody, rec.Body.String())
		})
	}
}
