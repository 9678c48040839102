package bus_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/cmmv-hive/resilience/bus"
)

func TestSubjects(t *testing.T) {
	def := bus.NewSubjects("")
	acme := bus.NewSubjects("acme.hive")
	tests := []struct {
		name, got, want string
	}{
		{"infer", def.Infer(), "hive.v1.infer"},
		{"infer one model", def.InferModel("gpt-5"), "hive.v1.infer.gpt-5"},
		{"health", def.Health("n1", "gpt-5"), "hive.v1.events.health.n1.gpt-5"},
		{"breaker", def.Breaker("n1", "gpt-5"), "hive.v1.events.breaker.n1.gpt-5"},
		{"recovery", def.Recovery("n1", "gpt-5"), "hive.v1.events.recovery.n1.gpt-5"},
		{"alert", def.Alert("critical", "model_unavailable"), "hive.v1.events.alert.critical.model_unavailable"},
		{"events", def.Events(), "hive.v1.events.>"},
		{"admin", def.Admin("n1", "drain"), "hive.v1.admin.n1.drain"},
		{"admin all", def.AdminAll("status"), "hive.v1.admin.all.status"},
		{"chaos inject", def.ChaosInject("n1"), "hive.v1.chaos.n1.inject"},
		{"chaos clear", def.ChaosClear("n1"), "hive.v1.chaos.n1.clear"},
		{"jobs submit", def.JobsSubmit(), "hive.v1.jobs.submit"},
		{"jobs get", def.JobsGet(), "hive.v1.jobs.get"},
		{"jobs done", def.JobsDone("j1"), "hive.v1.jobs.done.j1"},
		{"jobs queue", def.JobsQueue("critical"), "hive.v1.jobs.queue.critical"},
		{"jobs queues", def.JobsQueues(), "hive.v1.jobs.queue.>"},
		{"zero value", bus.Subjects{}.Infer(), "hive.v1.infer"},
		{"custom prefix", acme.Breaker("n2", "m"), "acme.hive.v1.events.breaker.n2.m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.got)
		})
	}
}

func TestValidToken(t *testing.T) {
	tests := []struct {
		name, kind, in string
		want           string // "" means valid
	}{
		{"plain", "model", "gpt-5", ""},
		{"underscore and digits", "model", "claude_4_sonnet", ""},
		{"upper case", "node", "Node-A", ""},
		{"empty", "node", "", "node name is empty"},
		{"dot", "node", "a.b", `node name "a.b" contains '.'`},
		{"space", "model", "gpt 5", `model name "gpt 5" contains ' '`},
		{"star", "model", "gpt*", `model name "gpt*" contains '*'`},
		{"chevron", "model", "m>", `model name "m>" contains '>'`},
		{"tab", "node", "a\tb", `node name "a\tb" contains '\t'`},
		{"non ascii", "model", "modèle", `model name "modèle" contains 'è'`},
		{"node all is reserved", "node", "all", `node name "all" is reserved: admin subjects use it to address every node`},
		{"model all is fine", "model", "all", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := bus.ValidToken(tt.kind, tt.in)
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			if assert.Error(t, err) {
				assert.Equal(t, tt.want, err.Error())
				assert.True(t, errors.Is(err, bus.ErrInvalidName), "error %v does not match ErrInvalidName", err)
			}
		})
	}
}

func TestValidPrefix(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"empty means default", "", true},
		{"one token", "hive", true},
		{"two tokens", "acme.hive", true},
		{"empty token", "acme..hive", false},
		{"trailing dot", "hive.", false},
		{"wildcard", "hive.*", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := bus.ValidPrefix(tt.in)
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, bus.ErrInvalidName)
			}
		})
	}
}
