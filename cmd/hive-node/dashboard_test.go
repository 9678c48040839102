package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/node"
)

// dashboardToken is the operator token of the browser test's node.
const dashboardToken = "dashboard-test-token-0123456789"

// badgeWithin is how soon after a BreakerTransition its badge must show it.
const badgeWithin = 2 * time.Second

// browser starts Debian's chromium, headless, on a fresh profile, and
// returns a tab bounded by limit. The test fails when chromium is missing:
// the dashboard is tested in a real browser or not at all.
func browser(t *testing.T, limit time.Duration) context.Context {
	t.Helper()
	return browserTolerating(t, limit, "")
}

// browserTolerating is browser, but the browser's own log of source
// (such as "network", for requests to a node that is down) does not fail
// the test; the page's errors and exceptions still do.
func browserTolerating(t *testing.T, limit time.Duration, source string) context.Context {
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
		chromedp.WindowSize(1366, 768), // the laptop screen the page is made for
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(ctx, limit)

	// The page's console, in the test log; an uncaught exception or an
	// error fails the test.
	console := chromedp.Console(ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); cancelTab(); cancelAlloc(); wg.Wait() })
	wg.Go(func() {
		for m, err := range console {
			if err != nil {
				return
			}
			t.Logf("browser console: %s", m)
			if (m.IsException() || m.Type == chromedp.ConsoleError) && (source == "" || m.Source != source) {
				t.Errorf("the page failed: %s", m)
			}
		}
	})
	return ctx
}

func byTestID(id string) chromedp.CSS { return chromedp.CSS(fmt.Sprintf(`[data-testid=%q]`, id)) }

// textIs is a JavaScript predicate: the element with the test id shows text.
func textIs(id, text string) string {
	return fmt.Sprintf(`document.querySelector('[data-testid=%q]')?.textContent === %q`, id, text)
}

// TestDashboardInABrowser drives the dashboard in chromium against a real
// node: every model shows, a breaker that opens shows open within 2 s of
// its event, the operator acknowledges the alert and closes the breaker
// from the page with the token (by keyboard), and the server refuses admin
// actions without the token.
func TestDashboardInABrowser(t *testing.T) {
	t.Setenv(envAdminToken, dashboardToken)
	// Without recovery, which would restart dead and probe it.
	n, nc := startTestNodeWith(t, "recovery: {enabled: false}")
	ctx := browser(t, 45*time.Second)

	// The page shows every model, each breaker closed.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(n.HTTPURL()+"/"),
		chromedp.WaitVisible(byTestID("breaker-e2e-dead")),
	))
	for _, m := range []string{"primary", "broken", "backup", "dead"} {
		text, err := chromedp.Run(ctx, chromedp.Text(byTestID("breaker-e2e-"+m)))
		require.NoError(t, err, m)
		assert.Equal(t, "closed", text, "breaker of %s", m)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	require.NoError(t, err)
	assert.Equal(t, "Hive dashboard", title)

	// dead fails every call with a connection error: its breaker opens on
	// the third. The badge must follow within 2 s of the event.
	sub, err := nc.SubscribeSync("hive.v1.events.breaker.e2e.dead")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	for range 3 {
		assert.Equal(t, "backup", servedBy(t, nc, "dead"))
	}
	var opened time.Time
	for opened.IsZero() {
		msg, err := sub.NextMsg(5 * time.Second)
		require.NoError(t, err, "dead's breaker opening")
		ev := &messages.BreakerTransition{}
		require.NoError(t, bus.DecodeTyped(msg.Header, msg.Data, ev))
		if ev.GetTo() == messages.BreakerState_open {
			opened = time.Now()
		}
	}
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](textIs("breaker-e2e-dead", "open"),
		chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(badgeWithin-time.Since(opened))))
	require.NoError(t, err, "the badge of dead did not show open within %v of the event", badgeWithin)
	t.Logf("the badge showed open %v after the BreakerTransition event", time.Since(opened).Round(time.Millisecond))

	// Three failures in a row fire model_unavailable: acknowledge it from
	// the page, with the token typed in.
	require.NoError(t, chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#token"), dashboardToken)))
	ack := chromedp.CSS(`#alert-list li[data-id^="model_unavailable.e2e.dead."] button`)
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(ack), chromedp.Click(ack)))
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](
		`document.querySelector('#alert-list li[data-id^="model_unavailable.e2e.dead."]')?.textContent.includes('acknowledged by dashboard')`,
		chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(5*time.Second)))
	require.NoError(t, err, "the alert did not show acknowledged")

	// Every control is a button with a label, reachable with Tab: from the
	// token field, Tab reaches dead's Close, and Enter presses it.
	unlabelled, err := chromedp.Run(ctx, chromedp.Evaluate[int](
		`[...document.querySelectorAll('[data-cmd]')].filter(b => b.tagName !== 'BUTTON' || !b.getAttribute('aria-label')).length`))
	require.NoError(t, err)
	assert.Zero(t, unlabelled, "controls that are not labelled buttons")
	require.NoError(t, chromedp.Do(ctx, chromedp.Focus(chromedp.CSS("#token"))))
	var tabs int
	for ; tabs < 100; tabs++ {
		focused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement?.dataset?.testid || ''`))
		require.NoError(t, err)
		if focused == "breaker_close-e2e-dead" {
			break
		}
		require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("\t")))
	}
	require.Less(t, tabs, 100, "Tab never reached dead's Close button")
	t.Logf("dead's Close is %d Tab presses after the token field", tabs)
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("\r")))
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](textIs("breaker-e2e-dead", "closed"),
		chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(5*time.Second)))
	require.NoError(t, err, "the badge of dead did not show closed after Close")
	result, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#result")))
	require.NoError(t, err)
	assert.Contains(t, result, "e2e: breaker_close dead: breaker closed")

	// The node applied it, and the audit trail names the dashboard.
	for {
		msg, err := sub.NextMsg(5 * time.Second)
		require.NoError(t, err, "the closing BreakerTransition")
		ev := &messages.BreakerTransition{}
		require.NoError(t, bus.DecodeTyped(msg.Header, msg.Data, ev))
		if ev.GetTo() == messages.BreakerState_closed {
			assert.Equal(t, "dashboard (claimed)", ev.GetActor())
			break
		}
	}

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "dashboard.png")
	if keep := os.Getenv("HIVE_DASHBOARD_SCREENSHOT"); keep != "" {
		path = keep // to look at it after the test
	}
	require.NoError(t, os.WriteFile(path, shot, 0o644))
	t.Logf("screenshot: %s (%d bytes)", path, len(shot))

	// Without the token the server refuses, whatever the page does.
	for _, auth := range []string{"", "Bearer wrong-token"} {
		req, err := http.NewRequest(http.MethodPost, n.HTTPURL()+"/api/admin/breaker_open", strings.NewReader(`{"node":"e2e","model":"primary"}`))
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "authorization %q", auth)
	}
	assert.Equal(t, "primary", servedBy(t, nc, "primary"), "the refused command changed nothing")
}

// TestDashboardShowsTheWholeCluster: one node's dashboard shows every
// node's models and events, since it reads them over NATS.
func TestDashboardShowsTheWholeCluster(t *testing.T) {
	srv := bustest.NewServer(t)
	cfg, err := config.Parse(config.GlobalFile, []byte("recovery: {enabled: false}"), config.ModelsFile, []byte(testModels))
	require.NoError(t, err)
	nodes := make(map[string]*node.Node)
	for _, id := range []string{"a", "b"} {
		f := &serveFlags{natsFlags: natsFlags{natsURL: srv.ClientURL()}, nodeID: id, httpAddr: "127.0.0.1:0"}
		n, err := startNode(f, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, n.Stop()) })
		nodes[id] = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	body, _, status, err := httpGet(ctx, nodes["a"].HTTPURL()+"/api/state")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, "%s", body)
	var state struct {
		Nodes []struct {
			Node   string `json:"node"`
			Models []struct {
				Name string `json:"name"`
			} `json:"models"`
		} `json:"nodes"`
	}
	require.NoError(t, json.Unmarshal(body, &state))
	require.Len(t, state.Nodes, 2, "%s", body)
	for i, id := range []string{"a", "b"} {
		assert.Equal(t, id, state.Nodes[i].Node)
		assert.Len(t, state.Nodes[i].Models, 4, "node %s", id)
	}

	// b's breaker, on a's event stream.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, nodes["a"].HTTPURL()+"/api/events", nil)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	_, err = cli(t, srv.ClientURL(), "breaker", "open", "primary", "--node", "b")
	require.NoError(t, err)
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || !strings.Contains(data, `"kind":"breaker"`) {
			continue
		}
		var ev struct{ Node, Model, Line string }
		require.NoError(t, json.Unmarshal([]byte(data), &ev))
		assert.Equal(t, "b", ev.Node)
		assert.Equal(t, "primary", ev.Model)
		assert.Contains(t, ev.Line, "b/primary closed -> forced_open (manual)")
		return
	}
	t.Fatalf("node a's event stream ended without b's breaker event: %v", sc.Err())
}

// TestDashboardCommand: `hive-node dashboard` prints the URL and checks
// it; exit 1 when nothing answers.
func TestDashboardCommand(t *testing.T) {
	n, _ := startTestNode(t)
	var out, errOut strings.Builder
	err := run([]string{"dashboard", "--http-url", n.HTTPURL()}, &out, &errOut)
	require.NoError(t, err, errOut.String())
	assert.Contains(t, out.String(), "dashboard: "+n.HTTPURL()+"/")
	assert.Contains(t, out.String(), "served by node e2e: 1 node(s), 4 model(s); admin actions off")

	out.Reset()
	err = run([]string{"dashboard", "--http-url", "http://127.0.0.1:1", "--timeout", "2s"}, &out, &errOut)
	require.Error(t, err)
	assert.Equal(t, 1, exitCode(err))
	assert.Contains(t, err.Error(), "does not answer")
	assert.Equal(t, 2, exitCode(run([]string{"dashboard", "--http-url", "ftp://x"}, &out, &errOut)))
}

// atLoad, installed in the tab before the page, records what the page
// shows when the browser fires its load event: the moment a headless
// `chromium --screenshot` takes its picture.
const atLoad = `addEventListener('load', () => {
  const badges = {};
  for (const b of document.querySelectorAll('[data-testid^="breaker-"]')) badges[b.dataset.testid] = b.textContent;
  window.hiveAtLoad = {
    badges,
    shown: [...document.querySelectorAll('tr[data-key]')].filter((tr) => tr.getClientRects().length > 0).length,
    summary: document.getElementById('summary').textContent,
    conn: document.getElementById('conn').textContent,
    ageMs: performance.now(),
  };
});`

type loadView struct {
	Badges  map[string]string `json:"badges"`
	Shown   int               `json:"shown"`
	Summary string            `json:"summary"`
	Conn    string            `json:"conn"`
	AgeMs   float64           `json:"ageMs"`
}

var testModelNames = []string{"primary", "broken", "backup", "dead"}

// TestDashboardColdPage opens the page of a fresh node that nobody looked
// at and that has served nothing: every model row is drawn by the load
// event (within the page's first second; the wait for it has a deadline),
// then the page goes live. The node has no operator token, so every
// action button is off and its tooltip says why.
func TestDashboardColdPage(t *testing.T) {
	t.Setenv(envAdminToken, "")
	n, _ := startTestNode(t)
	ctx := browser(t, 30*time.Second)
	require.NoError(t, chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
		_, err := cdp.Call(ctx, tab, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: atLoad})
		return err
	})))

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(n.HTTPURL()+"/"))) // returns after the load event
	got, err := chromedp.Run(ctx, chromedp.Evaluate[loadView](`window.hiveAtLoad`))
	require.NoError(t, err)
	t.Logf("at the load event, %.0f ms into the page's life: %d rows, %q, %q", got.AgeMs, got.Shown, got.Summary, got.Conn)
	assert.Equal(t, len(testModelNames), got.Shown, "rows shown at the load event")
	for _, m := range testModelNames {
		assert.Equal(t, "closed", got.Badges["breaker-e2e-"+m], "the breaker of %s at the load event", m)
	}
	assert.True(t, strings.HasPrefix(got.Summary, "1 node(s) · 4 model(s) · 0 open"), "summary at the load event: %q", got.Summary)
	assert.NotContains(t, got.Conn, "reconnecting", "the page has not lost a stream: it has not had one yet")

	// Then it goes live.
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById('conn').textContent === 'live from node e2e'`,
		chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(10*time.Second)))
	require.NoError(t, err, "the page did not go live")

	buttons, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('button[data-cmd]')].map((b) => (b.disabled ? 'off' : 'ON') + ': ' + b.title)`))
	require.NoError(t, err)
	want := make([]string, 5*len(testModelNames))
	for i := range want {
		want[i] = "off: Admin actions are off: node e2e was started without an operator token (HIVE_ADMIN_TOKEN)"
	}
	assert.Equal(t, want, buttons, "every action button: disabled, and why")
}

// screenshotFlags are the flags of the README's screenshot command, but the
// output: headless chromium as root, on an empty profile, with nothing of
// its own on the network, at the laptop size the page is made for.
func screenshotFlags(profile string) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--disable-quic", "--user-data-dir=" + profile, "--window-size=1366,768"}
}

// TestDashboardHeadlessSnapshot runs the README's command line against a
// fresh node, as issue 20 did: --dump-dom, which takes the page when
// --screenshot does, shows every model with its breaker, and --screenshot
// writes a picture of the window's size.
func TestDashboardHeadlessSnapshot(t *testing.T) {
	path, err := exec.LookPath("chromium")
	require.NoError(t, err, "chromium is not installed: apt-get install --no-install-recommends chromium")
	n, _ := startTestNode(t)
	chromium := func(args ...string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, path, append(screenshotFlags(t.TempDir()), append(args, n.HTTPURL()+"/")...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "chromium: %s", stderr.String())
		return out
	}

	dom := string(chromium("--dump-dom"))
	for _, m := range testModelNames {
		assert.Contains(t, dom, `data-testid="breaker-e2e-`+m+`">closed</span>`, "the row of %s", m)
	}
	assert.Contains(t, dom, `1 node(s) · 4 model(s) · 0 open`)
	assert.NotContains(t, dom, ">loading…<")

	shot := filepath.Join(t.TempDir(), "dashboard.png")
	chromium("--screenshot=" + shot)
	f, err := os.Open(shot)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.DecodeConfig(f)
	require.NoError(t, err)
	assert.Equal(t, 1366, img.Width)
	assert.Equal(t, 768, img.Height)
}

// TestDashboardReconnectsAfterARestart: the page reaches the node through
// a reverse proxy, as it does behind nginx. The node stops, and while it is
// down the proxy answers 502, on which the browser gives up its event
// stream for good; the node starts again on the same address, with one
// more model. The page shows the new node's rows and its events, live.
func TestDashboardReconnectsAfterARestart(t *testing.T) {
	t.Setenv(envAdminToken, "")
	srv := bustest.NewServer(t)
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	start := func(addr, models string) *node.Node {
		cfg, err := config.Parse(config.GlobalFile, []byte("recovery: {enabled: false}"), config.ModelsFile, []byte(models))
		require.NoError(t, err)
		n, err := startNode(&serveFlags{natsFlags: natsFlags{natsURL: srv.ClientURL()}, nodeID: "e2e", httpAddr: addr}, cfg, log)
		require.NoError(t, err)
		return n
	}
	first := start("127.0.0.1:0", testModels)
	backend, err := url.Parse(first.HTTPURL())
	require.NoError(t, err)

	refused := make(chan struct{}, 1) // the proxy refused the page's event stream
	proxy := httputil.NewSingleHostReverseProxy(backend)
	proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		w.WriteHeader(http.StatusBadGateway)
		if r.URL.Path == "/api/events" {
			select {
			case refused <- struct{}{}:
			default:
			}
		}
	}
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)

	ctx := browserTolerating(t, 60*time.Second, "network") // the 502s are logged as network errors
	live := `document.getElementById('conn').textContent === 'live from node e2e'`
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(front.URL+"/")))
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](live, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(10*time.Second)))
	require.NoError(t, err, "the page did not go live")

	require.NoError(t, first.Stop())
	select {
	case <-refused:
	case <-time.After(15 * time.Second):
		t.Fatal("the page did not try its event stream again while the node was down")
	}
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById('conn').textContent === 'reconnecting…'`,
		chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(5*time.Second)))
	require.NoError(t, err, "the page does not say it lost the node")

	second := start(backend.Host, testModels+"  extra:\n    provider: sim\n")
	t.Cleanup(func() { assert.NoError(t, second.Stop()) })

	// Rows: the model only the new node has shows, so its samples arrive.
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](live+` && document.querySelector('[data-testid="breaker-e2e-extra"]')?.textContent === 'closed'`,
		chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(20*time.Second)))
	require.NoError(t, err, "the page did not come back live with the restarted node's rows")
	// Events: a breaker forced open on the new node shows in the list and on its badge.
	_, err = cli(t, srv.ClientURL(), "breaker", "open", "primary", "--node", "e2e", "--reason", "after the restart")
	require.NoError(t, err)
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('[data-testid="breaker-e2e-primary"]')?.textContent === 'forced_open' &&
		[...document.querySelectorAll('#event-list li')].some((li) => li.textContent.includes('e2e/primary closed -> forced_open (manual)'))`,
		chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(10*time.Second)))
	require.NoError(t, err, "the restarted node's events do not reach the page")
}
