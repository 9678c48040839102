package fault_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers/fault"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		spec *messages.FaultSpec
		want string // "" for a valid spec
	}{
		{"an error fault", &messages.FaultSpec{Kind: messages.FaultSpec_error, ErrorClass: messages.ErrorClass_server_error, StatusCode: 502}, ""},
		{"a partition for a while", &messages.FaultSpec{Kind: messages.FaultSpec_partition, DurationMs: 1000}, ""},
		{"unknown kind", &messages.FaultSpec{Kind: 42}, "unknown kind 42"},
		{"probability above 1", &messages.FaultSpec{Probability: 1.5}, "probability 1.5 is outside (0, 1] (0 means 1)"},
		{"negative probability", &messages.FaultSpec{Probability: -0.1}, "probability -0.1 is outside (0, 1] (0 means 1)"},
		{"negative duration", &messages.FaultSpec{DurationMs: -1}, "durationMs -1 is negative"},
		{"cut without after", &messages.FaultSpec{Kind: messages.FaultSpec_cut_stream},
			"cut_stream needs afterTokens of at least 1 (to fail before the first piece, inject an error)"},
		{"latency without latency", &messages.FaultSpec{Kind: messages.FaultSpec_latency}, "latency needs latencyMs above 0"},
		{"partition forever", &messages.FaultSpec{Kind: messages.FaultSpec_partition},
			"partition needs durationMs above 0: a partitioned node cannot hear a clear"},
		{"status 200", &messages.FaultSpec{StatusCode: 200}, "statusCode 200 is not an HTTP error status (400..599, or 0 for the class's own)"},
		{"unknown class", &messages.FaultSpec{ErrorClass: 99}, "unknown error class 99"},
		{"two problems", &messages.FaultSpec{LatencyMs: -1, JitterMs: -2}, "latencyMs -1 is negative; jitterMs -2 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fault.Check(tt.spec)
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.True(t, errors.Is(err, fault.ErrInvalid), "Check's error matches ErrInvalid: %v", err)
			assert.Equal(t, tt.want, err.Error())
		})
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		spec *messages.FaultSpec
		want string
	}{
		{&messages.FaultSpec{Id: "f1", Kind: messages.FaultSpec_error, ErrorClass: messages.ErrorClass_server_error, StatusCode: 500,
			Model: "primary", Probability: 0.5, StartAfterMs: 1000, DurationMs: 10_000},
			"error server_error 500 on primary, p=0.5, after 1s, for 10s (f1)"},
		{&messages.FaultSpec{Kind: messages.FaultSpec_latency, LatencyMs: 200, JitterMs: 50}, "latency 200ms +-50ms on every model, until cleared"},
		{&messages.FaultSpec{Kind: messages.FaultSpec_cut_stream, AfterTokens: 3, Model: "*"}, "cut_stream after 3 tokens on every model, until cleared"},
		{&messages.FaultSpec{Kind: messages.FaultSpec_rate_limit, RetryAfterMs: 7000, Model: "m"}, "rate_limit retry after 7s on m, until cleared"},
		{&messages.FaultSpec{Kind: messages.FaultSpec_partition, DurationMs: 2000}, "partition of the node, for 2s"},
		{&messages.FaultSpec{Kind: messages.FaultSpec_kill}, "kill of the node"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, fault.Describe(tt.spec))
	}
}
