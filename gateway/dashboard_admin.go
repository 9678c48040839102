package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// adminCommands are the commands the dashboard may send: the manual
// controls of a model and the acknowledgement of an alert (the admin
// command names of bus/admin.go; drain stays on the command line).
var adminCommands = []string{"breaker_open", "breaker_close", "breaker_reset", "model_enable", "model_disable", "alert_ack"}

// adminTimeout bounds one admin command through the cluster.
const adminTimeout = 5 * time.Second

// adminRequest is the body of POST /api/admin/{command}.
type adminRequest struct {
	Node       string `json:"node"` // a node's name, or "" / "all" for every node
	Model      string `json:"model"`
	AlertID    string `json:"alertId"`
	Reason     string `json:"reason"`
	DurationMs int32  `json:"durationMs"`
}

// errNoToken is the 403 message when the node has no operator token.
const errNoToken = "admin actions are off on this node: it was started without an operator token (HIVE_ADMIN_TOKEN)"

// authorize checks "Authorization: Bearer <token>" in constant time. It
// writes 403 when the node has no token, 401 when the request's is missing
// or wrong, and 429 with Retry-After while the client's address is locked
// out after too many wrong tokens (see lockout).
func (d *dashboard) authorize(w http.ResponseWriter, r *http.Request) bool {
	if d.token == "" {
		dashError(w, http.StatusForbidden, errNoToken)
		return false
	}
	addr := clientAddr(r)
	if left := d.lockout.locked(addr); left > 0 {
		retryAfter(w, left, lockedOut)
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	// Hashing first makes the comparison's time independent of both lengths.
	g, want := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(d.token))
	if subtle.ConstantTimeCompare(g[:], want[:]) != 1 || !ok {
		if left := d.lockout.fail(addr); left > 0 {
			d.log.Warn().Str("remote", addr).Dur("for", left).Msg("dashboard: admin locked out for this address after repeated wrong operator tokens")
			retryAfter(w, left, lockedOut)
			return false
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="hive admin"`)
		dashError(w, http.StatusUnauthorized, "the operator token is missing or wrong")
		return false
	}
	d.lockout.succeed(addr)
	return true
}

// lockedOut is the 429 message of an address locked out.
const lockedOut = "too many wrong operator tokens from this address: admin actions refused until Retry-After has passed"

// admin is POST /api/admin/{command}: it runs the command through the
// cluster with the actor "dashboard" and answers {"replies": [AdminReply]}
// (protojson), one per node that answered; 502 when none did.
func (d *dashboard) admin(w http.ResponseWriter, r *http.Request) {
	if !d.authorize(w, r) {
		return
	}
	command := r.PathValue("command")
	if !slices.Contains(adminCommands, command) {
		dashError(w, http.StatusNotFound, "unknown admin command "+command+" (known: "+strings.Join(adminCommands, ", ")+")")
		return
	}
	var req adminRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		dashError(w, http.StatusBadRequest, "the body is not {node, model, alertId, reason, durationMs}: "+err.Error())
		return
	}
	if req.DurationMs < 0 {
		dashError(w, http.StatusBadRequest, "durationMs must be >= 0")
		return
	}
	node := req.Node
	if node == "" {
		node = "all"
	}
	ctx, cancel := context.WithTimeout(r.Context(), adminTimeout)
	defer cancel()
	replies, err := d.cluster.Admin(ctx, node, command, &messages.AdminCommand{
		Model: req.Model, AlertId: req.AlertID, Reason: req.Reason, DurationMs: req.DurationMs, Actor: adminActor,
	})
	if err != nil {
		dashError(w, http.StatusBadGateway, command+": "+err.Error())
		return
	}
	out := struct {
		Replies []json.RawMessage `json:"replies"`
	}{Replies: []json.RawMessage{}}
	for _, rep := range replies {
		b, err := pageJSON.Marshal(rep)
		if err != nil {
			dashError(w, http.StatusInternalServerError, err.Error())
			return
		}
		out.Replies = append(out.Replies, b)
	}
	d.log.Info().Str("command", command).Str("node", node).Str("model", req.Model).Str("alert", req.AlertID).
		Str("remote", r.RemoteAddr).Msg("dashboard: admin command")
	dashJSON(w, nil, http.StatusOK, out)
}
