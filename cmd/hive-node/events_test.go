package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/persistence"
)

// TestEventsAreJSONByDefault: what `nats sub 'hive.v1.events.>'` shows is
// text by default, protobuf with events.encoding: protobuf, and both decode
// as the same event.
func TestEventsAreJSONByDefault(t *testing.T) {
	for _, tc := range []struct{ global, contentType string }{
		{"", "application/json"},
		{"events: {encoding: protobuf}\n", "application/x-protobuf"},
	} {
		t.Run(tc.contentType, func(t *testing.T) {
			_, nc := startTestNodeWith(t, tc.global)
			sub, err := nc.SubscribeSync("hive.v1.events.>")
			require.NoError(t, err)
			require.NoError(t, nc.Flush())
			_, err = bus.AdminRequest(t.Context(), nc, bus.Subjects{}, "e2e", bus.CmdBreakerOpen,
				&messages.AdminCommand{Model: "dead", Actor: "test"}, time.Second)
			require.NoError(t, err)
			for {
				m, err := sub.NextMsg(requestLimit)
				require.NoError(t, err)
				assert.Equal(t, tc.contentType, m.Header.Get(bus.ContentTypeHeader), m.Subject)
				if tc.contentType == "application/json" {
					assert.True(t, json.Valid(m.Data), "%s: %q", m.Subject, m.Data)
				}
				e, err := persistence.DecodeEvent(bus.Subjects{}, m.Subject, m.Header, m.Data, time.Now())
				require.NoError(t, err, m.Subject)
				if bt, ok := e.Event.(*messages.BreakerTransition); ok {
					assert.Equal(t, messages.BreakerState_forced_open, bt.GetTo())
					return
				}
			}
		})
	}
}

// lineWriter hands each line written to it to a channel.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w <- l
	}
	return len(p), nil
}

// TestEventsCommandSaysWhenItReconnects: `hive-node events` tells when it
// lost NATS and when it follows again.
func TestEventsCommandSaysWhenItReconnects(t *testing.T) {
	nc := bustest.Connect(t, bustest.NewServer(t))
	lines := make(lineWriter, 8)
	watchConnection(nc, lines)
	require.NoError(t, nc.ForceReconnect())
	next := func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(requestLimit):
			t.Fatal("nothing said")
			return ""
		}
	}
	assert.Contains(t, next(), "lost the connection to NATS")
	assert.Contains(t, next(), "reconnected to nats://127.0.0.1:")
}
