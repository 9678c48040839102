package bus_test

import (
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/messages"
)

func TestEventsGoToTheirSubjects(t *testing.T) {
	s := bustest.NewServer(t)
	nc := bustest.Connect(t, s)
	sub, err := nc.SubscribeSync("hive.v1.events.>")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	ev := bus.NewEvents(nc, bus.NewSubjects(""), zerolog.Nop())
	ev.Breaker(&messages.BreakerTransition{Node: "n1", Model: "gpt-5", To: messages.BreakerState_open})
	ev.Health(&messages.HealthChanged{Node: "n1", Model: "gpt-5", To: messages.HealthStatus_degraded})
	ev.Recovery(&messages.RecoveryEvent{Node: "n1", Model: "gpt-5", Kind: messages.RecoveryEvent_restart})
	ev.Alert(&messages.Alert{Rule: "supervisor_gave_up", Severity: messages.Alert_critical})

	tests := []struct {
		subject string
		into    proto.Message
	}{
		{"hive.v1.events.breaker.n1.gpt-5", &messages.BreakerTransition{}},
		{"hive.v1.events.health.n1.gpt-5", &messages.HealthChanged{}},
		{"hive.v1.events.recovery.n1.gpt-5", &messages.RecoveryEvent{}},
		{"hive.v1.events.alert.critical.supervisor_gave_up", &messages.Alert{}},
	}
	for _, tt := range tests {
		msg, err := sub.NextMsg(10 * time.Second)
		require.NoError(t, err)
		assert.Equal(t, tt.subject, msg.Subject)
		assert.Equal(t, "application/json", msg.Header.Get("Content-Type"), "events are JSON by default")
		assert.NoError(t, bus.DecodeTyped(msg.Header, msg.Data, tt.into), "%s decodes", tt.subject)
	}
}

func TestSubscribeHealthSeesEveryNode(t *testing.T) {
	s := bustest.NewServer(t)
	nc := bustest.Connect(t, s)
	got := make(chan proto.Message, 10)
	subs, err := bus.SubscribeHealth(nc, bus.NewSubjects(""), zerolog.Nop(), func(m proto.Message) { got <- m })
	require.NoError(t, err)
	require.Len(t, subs, 2)
	require.NoError(t, nc.Flush())

	ev := bus.NewEvents(bustest.Connect(t, s), bus.NewSubjects(""), zerolog.Nop())
	ev.Health(&messages.HealthChanged{Node: "other", Model: "m", To: messages.HealthStatus_unavailable})
	ev.Breaker(&messages.BreakerTransition{Node: "other", Model: "m", To: messages.BreakerState_open})
	ev.Recovery(&messages.RecoveryEvent{Node: "other", Model: "m"}) // not a health event: not delivered

	for range 2 {
		select {
		case m := <-got:
			switch m := m.(type) {
			case *messages.HealthChanged:
				assert.Equal(t, messages.HealthStatus_unavailable, m.To)
			case *messages.BreakerTransition:
				assert.Equal(t, messages.BreakerState_open, m.To)
			default:
				t.Fatalf("unexpected %T", m)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no event within 10s")
		}
	}
}
