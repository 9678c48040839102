package gateway

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmv-hive/resilience/messages"
)

// browser starts Debian's chromium, headless, on a fresh profile, with a
// 1366x768 window, and returns a tab bounded by limit. An uncaught
// exception or a console error fails the test. (cmd/hive-node has the same
// helper for its tests against a real node.)
func browser(t *testing.T, limit time.Duration) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed, and the dashboard is tested in it: "+
			"apt-get install --no-install-recommends chromium (.ci/run does that): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 768),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(ctx, limit)
	console := chromedp.Console(ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); cancelTab(); cancelAlloc(); wg.Wait() })
	wg.Go(func() {
		for m, err := range console {
			if err != nil {
				return
			}
			t.Logf("browser console: %s", m)
			if m.IsException() || m.Type == chromedp.ConsoleError {
				t.Errorf("the page failed: %s", m)
			}
		}
	})
	return ctx
}

// worstCluster is one node whose models show the longest text each cell
// can hold: every breaker state, a day in it, full bulkheads with a queue,
// four-digit latencies and rates, and an alert with a long message.
type worstCluster struct {
	mu    sync.Mutex // guards calls
	calls int64
}

var worstModels = []struct {
	name    string
	breaker messages.BreakerState
	health  messages.HealthStatus
	since   time.Duration
	p50     float64
	p99     float64
}{
	{"claude-4-sonnet", messages.BreakerState_forced_open, messages.HealthStatus_unavailable, 23*time.Hour + 59*time.Minute, 1234.4, 9876},
	{"gemini-2-5-pro", messages.BreakerState_half_open, messages.HealthStatus_maintenance, 47*time.Hour + 59*time.Minute, 12345, 30000},
	{"deepseek-v3", messages.BreakerState_metrics_only, messages.HealthStatus_degraded, 59*time.Minute + 59*time.Second, 1.234, 99.99},
	{"gpt-5", messages.BreakerState_open, messages.HealthStatus_available, 12*24*time.Hour + 23*time.Hour, 123.4, 999.9},
}

func (w *worstCluster) Status(ctx context.Context) ([]*messages.NodeStatus, error) {
	w.mu.Lock()
	w.calls++
	n := w.calls
	w.mu.Unlock()
	st := &messages.NodeStatus{Node: "edge-eu-west-1", Version: "0.1.0-dev+fa9989f", Started: timestamppb.New(time.Now().Add(-49 * time.Hour)),
		Persistence: true, Draining: true,
		Alerts: []*messages.Alert{{Id: "a1", Rule: "open_breakers", Severity: messages.Alert_critical, Node: "edge-eu-west-1",
			Time:    timestamppb.New(time.Now().Add(-time.Hour)),
			Message: "4 breakers refuse traffic (claude-4-sonnet, gemini-2-5-pro, deepseek-v3, gpt-5): every model of the fallback group claude-4-sonnet is out, requests get circuit_open/all_unavailable until one comes back"}}}
	for i, m := range worstModels {
		st.Models = append(st.Models, &messages.ModelStatus{
			Name: m.name, Provider: "anthropic", Breaker: m.breaker, Health: m.health, Enabled: i != 0,
			RampPercent: int32(5 + 30*i), MaxConcurrent: 100, InFlight: 100, Queued: 99,
			Requests: 12345 * n, Successes: 12000 * n, Failures: 345 * n,
			Evidence:     &messages.Evidence{Calls: 100, LatencyP50Ms: m.p50, LatencyP99Ms: m.p99},
			BreakerSince: timestamppb.New(time.Now().Add(-m.since)),
		})
	}
	return []*messages.NodeStatus{st}, nil
}

func (w *worstCluster) Events(ctx context.Context, fn func(Event)) error {
	<-ctx.Done()
	return nil
}

func (w *worstCluster) Admin(context.Context, string, string, *messages.AdminCommand) ([]*messages.AdminReply, error) {
	return nil, fmt.Errorf("not in this test")
}

// fillHistory gives every model ten minutes of points, one per interval,
// as if the sampler had run that long.
func fillHistory(s *sampler, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sr := range s.series {
		sr.points = nil
		for at := now.Add(-historyWindow + sampleInterval); !at.After(now); at = at.Add(sampleInterval) {
			phase := float64(at.Unix()%60) / 60
			sr.points = append(sr.points, samplePoint{float64(at.UnixMilli()), 12345 * (1 + phase), 12000, 345 * phase, 1234 * (1 + phase), 9876 * (2 - phase)})
		}
	}
}

// The layout holds the longest text of every cell without cutting it,
// the charts are big enough to read and say their scale, and at 1280
// pixels too. Without an operator token every action is off and says why.
func TestDashboardLayoutInABrowser(t *testing.T) {
	h := dashHandler(t, &worstCluster{}, "")
	h.dash.sampler.sample(context.Background(), time.Now()) // the series exist from here
	fillHistory(h.dash.sampler, time.Now())
	srv := h
	ctx := browser(t, 30*time.Second)

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")))
	for _, width := range []int64{1366, 1280} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(width, 768)))
			// The next render draws the row at the new width.
			_, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelectorAll('[data-testid^="breaker-edge-eu-west-1-"]').length === 4 &&
				[...document.querySelectorAll('.chart-box .scale')].every((s) => s.textContent !== '')`,
				chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(wait)))
			require.NoError(t, err, "every row and its charts' scales")

			// Every cell (and each line within one) shows its whole text.
			cut, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('th, td, td .l1, td .l2, .actions, #summary, #conn, .node-meta')]
				.filter((e) => e.scrollWidth > e.clientWidth + 0.5)
				.map((e) => (e.closest('tr')?.dataset.key || e.id || e.className) + ': ' + JSON.stringify(e.textContent) + ' needs ' + e.scrollWidth + ' px, has ' + e.clientWidth)`))
			require.NoError(t, err)
			assert.Empty(t, cut, "cells that cut their text at %d px", width)
			texts, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('tr[data-key="edge-eu-west-1/claude-4-sonnet"] td')].map((td) => td.innerText.replace(/\s+/g, ' ').trim())`))
			require.NoError(t, err)
			require.Len(t, texts, 7, "%q", texts)
			assert.Equal(t, "forced_open for 23h 59m", texts[1])
			assert.Equal(t, "unavailable ramp 5%", texts[2])
			assert.Equal(t, "100/100 q 99", texts[3])
			assert.Contains(t, texts[4], "p50 1234 ms p99 9876 ms", "latency with its unit")
			assert.Contains(t, texts[5], "req/s", "the rate with its unit")
			lat, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('tr[data-key="edge-eu-west-1/gemini-2-5-pro"] td.metric').innerText.replace(/\s+/g, ' ').trim()`))
			require.NoError(t, err)
			assert.Contains(t, lat, "p50 12.3 s p99 30.0 s", "from 10 s up, seconds")

			// The charts: no sparkline of 90x20 px.
			sizes, err := chromedp.Run(ctx, chromedp.Evaluate[[][2]float64](`[...document.querySelectorAll('svg.chart')].map((s) => { const b = s.getBoundingClientRect(); return [b.width, b.height]; })`))
			require.NoError(t, err)
			require.Len(t, sizes, 8)
			for _, sz := range sizes {
				assert.GreaterOrEqual(t, sz[0], 128.0, "chart width at %d px", width)
				assert.GreaterOrEqual(t, sz[1], 34.0, "chart height at %d px", width)
			}
		})
	}

	// No token on this node: every action is off, and says why.
	buttons, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('button[data-cmd]')].map((b) => (b.disabled ? 'off' : 'ON') + ': ' + b.title)`))
	require.NoError(t, err)
	want := make([]string, 4*5+1) // five per model, and the alert's Ack
	for i := range want {
		want[i] = "off: Admin actions are off: node n1 was started without an operator token (HIVE_ADMIN_TOKEN)"
	}
	assert.Equal(t, want, buttons, "every action button: disabled, and why")

	if keep := os.Getenv("HIVE_DASHBOARD_LAYOUT_SCREENSHOT"); keep != "" { // to look at it after the test
		require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1366, 768)))
		shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(keep, shot, 0o644))
	}
}
