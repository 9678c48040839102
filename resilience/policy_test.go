package resilience

import (
	"testing"

	"github.com/cmmv-hive/resilience/messages"
)

func TestPolicyTableCoversEveryClass(t *testing.T) {
	if got, want := len(policies), len(messages.ErrorClass_name); got != want {
		t.Fatalf("policy table has %d rows, ErrorClass has %d values", got, want)
	}
}

func TestPolicyFor(t *testing.T) {
	tests := []struct {
		class messages.ErrorClass
		want  Policy
	}{
		{messages.ErrorClass_timeout, Policy{CountsAgainstBreaker: true, FailOver: true}},
		{messages.ErrorClass_server_error, Policy{CountsAgainstBreaker: true, RetrySame: 1, FailOver: true, PeerAtOnce: true}},
		{messages.ErrorClass_rate_limited, Policy{CountsAgainstBreaker: true, RetrySame: 1, RetryAfterOnly: true, FailOver: true, PeerAtOnce: true}},
		{messages.ErrorClass_auth, Policy{CountsAgainstBreaker: true, FailOver: true, ForcesOpen: true, PeerAtOnce: true}},
		{messages.ErrorClass_bad_request, Policy{}},
		{messages.ErrorClass_cancelled, Policy{}},
		{messages.ErrorClass_stream_cut, Policy{CountsAgainstBreaker: true, FailOver: true, PeerAtOnce: true}},
		{messages.ErrorClass(99), Policy{CountsAgainstBreaker: true, FailOver: true}},
	}
	for _, tt := range tests {
		t.Run(tt.class.String(), func(t *testing.T) {
			if got := PolicyFor(tt.class); got != tt.want {
				t.Errorf("PolicyFor(%v) = %+v, want %+v", tt.class, got, tt.want)
			}
		})
	}
}

func TestOutcomeCounts(t *testing.T) {
	tests := []struct {
		class      messages.ErrorClass
		wantCounts bool
	}{
		{messages.ErrorClass_ok, true},
		{messages.ErrorClass_timeout, true},
		{messages.ErrorClass_bad_request, false},
		{messages.ErrorClass_cancelled, false},
		{messages.ErrorClass_circuit_open, false},
	}
	for _, tt := range tests {
		if got := (Outcome{Class: tt.class}).Counts(); got != tt.wantCounts {
			t.Errorf("Outcome{%v}.Counts() = %v, want %v", tt.class, got, tt.wantCounts)
		}
	}
}
