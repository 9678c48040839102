package providers

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cmmv-hive/resilience/messages"
)

func TestClassify(t *testing.T) {
	rateLimited := &Error{Class: messages.ErrorClass_rate_limited, Message: "slow down"}
	tests := []struct {
		name string
		err  error
		want messages.ErrorClass
	}{
		{"deadline", context.DeadlineExceeded, messages.ErrorClass_timeout},
		{"wrapped deadline", fmt.Errorf("call: %w", context.DeadlineExceeded), messages.ErrorClass_timeout},
		{"cancel", context.Canceled, messages.ErrorClass_cancelled},
		{"classified", fmt.Errorf("call: %w", rateLimited), messages.ErrorClass_rate_limited},
		{"anything else", errors.New("boom"), messages.ErrorClass_server_error},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got.Class != tt.want {
				t.Errorf("Classify(%v).Class = %v, want %v", tt.err, got.Class, tt.want)
			}
		})
	}
	if Classify(nil) != nil {
		t.Error("Classify(nil) is not nil")
	}
	if got := rateLimited.Error(); got != "rate_limited: slow down" {
		t.Errorf("Error() = %q", got)
	}
}
