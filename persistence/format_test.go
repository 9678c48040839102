package persistence_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/persistence"
)

var at = time.Date(2026, 11, 27, 4, 5, 6, 123e6, time.UTC)

func TestFormatEntry(t *testing.T) {
	admin := func(command string) string { return subjects.AdminAudit("node-a", command) }
	for _, tc := range []struct {
		name    string
		subject string
		event   proto.Message
		want    string
	}{
		{"health", subjects.Health("node-a", "gpt-5"),
			&messages.HealthChanged{Time: ts(at), Node: "node-a", Model: "gpt-5", From: messages.HealthStatus_available, To: messages.HealthStatus_degraded, Reason: "p95 above 2s"},
			"2026-11-27T04:05:06.123Z health   node-a/gpt-5 available -> degraded: p95 above 2s"},
		{"breaker tripped", subjects.Breaker("node-a", "gpt-5"),
			&messages.BreakerTransition{Time: ts(at), Node: "node-a", Model: "gpt-5", From: messages.BreakerState_closed, To: messages.BreakerState_open,
				Reason: messages.BreakerTransition_threshold, Evidence: &messages.Evidence{Calls: 5, Failures: 5}},
			"2026-11-27T04:05:06.123Z breaker  node-a/gpt-5 closed -> open (threshold) failures 5/5"},
		{"breaker forced", subjects.Breaker("node-a", "gpt-5"),
			&messages.BreakerTransition{Time: ts(at), Node: "node-a", Model: "gpt-5", From: messages.BreakerState_closed, To: messages.BreakerState_forced_open,
				Reason: messages.BreakerTransition_manual, OpenUntil: ts(at.Add(time.Minute)), Actor: "alice"},
			"2026-11-27T04:05:06.123Z breaker  node-a/gpt-5 closed -> forced_open (manual) until 2026-11-27T04:06:06.123Z by alice"},
		{"manual action", subjects.Recovery("node-a", "gpt-5"),
			&messages.RecoveryEvent{Time: ts(at), Node: "node-a", Model: "gpt-5", Kind: messages.RecoveryEvent_manual_action, Trigger: "breaker_open", Actor: "alice", Detail: "provider incident"},
			"2026-11-27T04:05:06.123Z recovery node-a/gpt-5 manual_action breaker_open by alice: provider incident"},
		{"ramp step", subjects.Recovery("node-a", "gpt-5"),
			&messages.RecoveryEvent{Time: ts(at), Node: "node-a", Model: "gpt-5", Kind: messages.RecoveryEvent_ramp_step, RampPercent: 50},
			"2026-11-27T04:05:06.123Z recovery node-a/gpt-5 ramp_step ramp 50%"},
		{"restart", subjects.Recovery("node-a", "gpt-5"),
			&messages.RecoveryEvent{Time: ts(at), Node: "node-a", Model: "gpt-5", Kind: messages.RecoveryEvent_restart, Attempt: 2},
			"2026-11-27T04:05:06.123Z recovery node-a/gpt-5 restart attempt 2"},
		{"alert", subjects.Alert("critical", "open_breakers"),
			&messages.Alert{Time: ts(at), Rule: "open_breakers", Severity: messages.Alert_critical, Node: "node-a", Message: "2 breakers open"},
			"2026-11-27T04:05:06.123Z alert    critical open_breakers fired: 2 breakers open (node-a)"},
		{"alert acknowledged", subjects.Alert("warning", "error_rate"),
			&messages.Alert{Time: ts(at), Rule: "error_rate", Severity: messages.Alert_warning, State: messages.Alert_acknowledged, Node: "node-a", Model: "gpt-5", Actor: "bob"},
			"2026-11-27T04:05:06.123Z alert    warning error_rate acknowledged by bob (node-a/gpt-5)"},
		{"admin", admin("breaker_open"),
			&messages.AdminCommand{Model: "gpt-5", Actor: "alice"},
			"2026-11-27T04:05:06.123Z admin    node-a breaker_open gpt-5 by alice"},
		{"admin with duration and reason", admin("breaker_open"),
			&messages.AdminCommand{Model: "gpt-5", DurationMs: 300000, Actor: "alice", Reason: "provider incident"},
			"2026-11-27T04:05:06.123Z admin    node-a breaker_open gpt-5 for 5m0s by alice: provider incident"},
		{"admin ack", admin("alert_ack"),
			&messages.AdminCommand{AlertId: "a-17", Actor: "bob"},
			"2026-11-27T04:05:06.123Z admin    node-a alert_ack alert a-17 by bob"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := proto.Marshal(tc.event)
			require.NoError(t, err)
			// at is also the receive time, for admin commands, which carry none.
			e, err := persistence.DecodeEvent(subjects, tc.subject, nats.Header{bus.TypeHeader: {bus.TypeName(tc.event)}}, body, at)
			require.NoError(t, err)
			assert.Equal(t, tc.want, persistence.FormatEntry(e))
		})
	}
}

// TestDecodeEvent: JSON bodies decode by their Content-Type, and a body
// that does not decode still yields what the subject says.
func TestDecodeEvent(t *testing.T) {
	h := nats.Header{}
	h.Set(bus.ContentTypeHeader, "application/json")
	h.Set(bus.TypeHeader, "hive.v1.BreakerTransition")
	e, err := persistence.DecodeEvent(subjects, subjects.Breaker("node-a", "gpt-5"), h, []byte(`{"from":"closed","to":"open"}`), at)
	require.NoError(t, err)
	assert.Equal(t, messages.BreakerState_open, e.Event.(*messages.BreakerTransition).GetTo())
	assert.Equal(t, at, e.Time, "time when the event carries none")

	e, err = persistence.DecodeEvent(subjects, subjects.Health("node-a", "gpt-5"), nats.Header{bus.TypeHeader: {"hive.v1.HealthChanged"}}, []byte{0xff}, at)
	require.ErrorIs(t, err, bus.ErrDecode)
	assert.Equal(t, persistence.Entry{Time: at, Subject: subjects.Health("node-a", "gpt-5"), Kind: "health", Node: "node-a", Model: "gpt-5"}, e)

	// A message of another type on an event subject (an infer reply a node
	// was tricked into sending there, say) is never taken for an event,
	// even when its body would decode as one.
	reply, err := proto.Marshal(&messages.InferResponse{RequestId: "gpt-5", Content: "x"})
	require.NoError(t, err)
	for _, typ := range []string{"", "hive.v1.InferResponse"} {
		e, err = persistence.DecodeEvent(subjects, subjects.Breaker("node-a", "gpt-5"), nats.Header{bus.TypeHeader: {typ}}, reply, at)
		require.ErrorIs(t, err, bus.ErrWrongType, "type %q", typ)
		assert.Nil(t, e.Event, "type %q", typ)
	}

	e, err = persistence.DecodeEvent(subjects, eventsBase+"future.x.y", nil, nil, at)
	require.Error(t, err, "unknown kind")
	assert.Equal(t, "future", e.Kind)
	assert.Equal(t, "2026-11-27T04:05:06.123Z future   hive.v1.events.future.x.y (not decoded)", persistence.FormatEntry(e))
}
