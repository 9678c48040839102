package config

import (
	"testing"
	"time"
)

func TestNodeBlocksDefaults(t *testing.T) {
	c := mustParse(t, "", okModels)
	g := c.Global
	if g.WhenAllDown != (WhenAllDown{}) {
		t.Errorf("whenAllDown: got %+v, want fail fast with no reply", g.WhenAllDown)
	}
	wantSup := Supervision{MaxRestarts: 5, Within: time.Minute, BaseDelay: 100 * time.Millisecond, MaxDelay: 10 * time.Second, Jitter: 0.2}
	if g.Supervision != wantSup {
		t.Errorf("supervision: got %+v, want %+v", g.Supervision, wantSup)
	}
	wantRec := Recovery{Enabled: true, MaxConcurrent: 3, ErrorRate: 0.5, MinCalls: 10, ResponseTime: 30 * time.Second,
		Failures: 10, Timeout: 2 * time.Minute, Cooldown: 30 * time.Second}
	if g.Recovery != wantRec {
		t.Errorf("recovery: got %+v, want %+v", g.Recovery, wantRec)
	}
}

func TestNodeBlocksGiven(t *testing.T) {
	c := mustParse(t, lines(
		"whenAllDown: {wait: 2s, reply: \"Sorry, try later.\"}",
		"supervision: {maxRestarts: 2, baseDelay: 10ms}",
		"recovery: {enabled: false, maxConcurrent: 1}",
	), okModels)
	g := c.Global
	if g.WhenAllDown.Wait != 2*time.Second || g.WhenAllDown.Reply != "Sorry, try later." {
		t.Errorf("whenAllDown: got %+v", g.WhenAllDown)
	}
	if g.Supervision.MaxRestarts != 2 || g.Supervision.BaseDelay != 10*time.Millisecond || g.Supervision.MaxDelay != 10*time.Second {
		t.Errorf("supervision: got %+v, want 2 restarts from 10ms, the rest default", g.Supervision)
	}
	if g.Recovery.Enabled || g.Recovery.MaxConcurrent != 1 || g.Recovery.ErrorRate != 0.5 {
		t.Errorf("recovery: got %+v, want disabled, 1 at once, the rest default", g.Recovery)
	}
}

func TestNodeBlocksBad(t *testing.T) {
	tests := []badFile{
		{name: "negative wait", global: "whenAllDown: {wait: -1s}", models: okModels,
			want: `resilience.yml:1: whenAllDown.wait: "-1s" is negative (use "30s" or milliseconds)`},
		{name: "zero restarts", global: "supervision: {maxRestarts: 0}", models: okModels,
			want: `resilience.yml:1: supervision.maxRestarts: "0" is too small (must be at least 1)`},
		{name: "error rate above 1", global: "recovery: {errorRate: 1.5}", models: okModels,
			want: `resilience.yml:1: recovery.errorRate: "1.5" is out of range (must be in (0, 1])`},
		{name: "unknown key", global: "recovery: {maxConcurent: 2}", models: okModels,
			want: `resilience.yml:1: recovery.maxConcurent: unknown key (did you mean "maxConcurrent"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(GlobalFile, []byte(tt.global), ModelsFile, []byte(tt.models))
			if err == nil || err.Error() != tt.want {
				t.Errorf("got error %v\nwant %s", err, tt.want)
			}
		})
	}
}
