package node

import (
	"context"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/config"
)

// TestNodesWithDifferentModelSets: two real nodes on one server, each with
// models the other lacks. Every request for a model either serves is
// answered by a node that has it, whichever node the queue group delivered
// it to; a model neither has is unknown_model, said as such.
func TestNodesWithDifferentModelSets(t *testing.T) {
	srv := bustest.NewServer(t)
	for node, models := range map[string]string{
		"left":  "models:\n  chat:\n    provider: sim\n    sim: {latency: 1ms, reply: left chat}\n  shared:\n    provider: sim\n    sim: {latency: 1ms}\n",
		"right": "models:\n  code:\n    provider: sim\n    sim: {latency: 1ms, reply: right code}\n  shared:\n    provider: sim\n    sim: {latency: 1ms}\n",
	} {
		cfg, err := config.Parse(config.GlobalFile, nil, config.ModelsFile, []byte(models))
		require.NoError(t, err)
		n, err := Start(context.Background(), Config{Files: cfg, ID: node, NATS: bus.ConnectOptions{URLs: srv.ClientURL()}, HTTPAddr: "off"},
			zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, n.Stop()) })
	}
	nc := bustest.Connect(t, srv)
	served := map[string]int{}
	for range 30 {
		for model, node := range map[string]string{"chat": "left", "code": "right"} {
			_, resp := requestJSON(t, nc, `{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`)
			require.Nil(t, resp.GetError(), "model %s: %v", model, resp.GetError())
			assert.Equal(t, node, resp.GetNode(), "model %s", model)
			assert.Equal(t, model, resp.GetServedBy())
		}
		_, resp := requestJSON(t, nc, `{"model":"shared","messages":[{"role":"user","content":"hi"}]}`)
		require.Nil(t, resp.GetError())
		served[resp.GetNode()]++
	}
	assert.Len(t, served, 2, "a model both serve is spread over both: %v", served)
	_, resp := requestJSON(t, nc, `{"model":"nowhere","messages":[{"role":"user","content":"hi"}]}`)
	assert.Equal(t, "unknown_model", resp.GetError().GetCode())
}
