package chaos

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sampleReport is baseline's recording with two objectives, one failing,
// a killed node, and a truncated request.
func sampleReport(t *testing.T) *Report {
	t.Helper()
	rec := baseline()
	rec.Disruptions = append(rec.Disruptions, Disruption{ID: "kill-n2", Kind: "kill", Node: "n2", Start: 16 * time.Second, End: 18 * time.Second, Ended: true})
	at(rec, 18500*ms).Node = "n2" // n2 serves again
	tr := at(rec, 17*time.Second)
	tr.Outcome, tr.ErrorClass, tr.Content, tr.Streamed = Truncated, ClassTruncated, "a (simulated) rec", true
	rec.Steps = []AppliedStep{{Step: Step{At: 8 * time.Second, Action: ActClear, Node: "all"}, Applied: 8 * time.Second, Done: 8*time.Second + ms, Acks: []string{"n1: ok"}}}
	var objs []Objective
	for _, s := range []string{"success_rate >= 0.99", "recovery_time <= 500ms"} {
		o, err := ParseObjective(s)
		require.NoError(t, err)
		objs = append(objs, o)
	}
	return &Report{Scenario: "sample", File: "sample.yml", Target: "1 hive node", Started: time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC),
		Models: []string{"a", "b"}, Nodes: []string{"n1"}, Load: Load{Rate: 10, Duration: 20 * time.Second, Warmup: 2 * time.Second, Mix: []Mix{{"a", 1}}},
		Results: Evaluate(objs, rec), Recording: rec}
}

func TestReportJSON(t *testing.T) {
	rep := sampleReport(t)
	var buf bytes.Buffer
	require.NoError(t, rep.WriteJSON(&buf))
	var got map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
	for _, key := range []string{"scenario", "file", "target", "started", "duration_s", "warmup_s", "elapsed_s", "passed",
		"interrupted", "objectives", "summary", "steps", "disruptions", "events", "series"} {
		assert.Contains(t, got, key)
	}
	assert.Equal(t, false, got["passed"])
	objs := got["objectives"].([]any)
	require.Len(t, objs, 2)
	first := objs[0].(map[string]any)
	assert.Equal(t, "success_rate >= 0.99", first["objective"])
	assert.Equal(t, true, first["pass"])
	assert.InDelta(t, 179.0/180, first["value"], 1e-9)
	assert.Equal(t, "99.44%", first["measured"])
	second := objs[1].(map[string]any)
	assert.Equal(t, false, second["pass"])
	series := got["series"].([]any)
	require.Len(t, series, 20)
	sec := series[9].(map[string]any)
	for _, key := range []string{"t", "requests", "ok", "errors", "lost", "truncated", "success_rate", "p50_ms", "p99_ms", "served_by", "disruptions"} {
		assert.Contains(t, sec, key, "second 9")
	}
	summary := got["summary"].(map[string]any)
	assert.EqualValues(t, 180, summary["requests"])
	assert.EqualValues(t, 1, summary["truncated"])
	assert.EqualValues(t, 20, summary["warmup_requests"])
	d := got["disruptions"].([]any)[1].(map[string]any)
	assert.Equal(t, "kill-n2", d["id"])
	assert.EqualValues(t, 16, d["start_s"])
	events := got["events"].([]any)
	assert.Len(t, events, len(rep.Recording.Events))
}

func TestReportRequests(t *testing.T) {
	rep := sampleReport(t)
	var buf bytes.Buffer
	require.NoError(t, rep.WriteRequests(&buf))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 200)
	var r map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[170]), &r))
	assert.Equal(t, "truncated", r["outcome"])
	assert.Equal(t, "a (simulated) rec", r["content"])
	assert.EqualValues(t, 17000, r["start_ms"])
	assert.EqualValues(t, 20, r["latency_ms"])
}

// svgElement is what the shape test reads of the SVG.
type svgElement struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Kids    []svgElement
}

func (e *svgElement) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	e.XMLName, e.Attrs = start.Name, start.Attr
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			var kid svgElement
			if err := kid.UnmarshalXML(d, tk); err != nil {
				return err
			}
			e.Kids = append(e.Kids, kid)
		case xml.CharData:
			e.Text += string(tk)
		case xml.EndElement:
			return nil
		}
	}
}

func (e *svgElement) attr(name string) string {
	for _, a := range e.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func TestReportSVG(t *testing.T) {
	rep := sampleReport(t)
	var buf bytes.Buffer
	require.NoError(t, rep.WriteSVG(&buf))
	var root svgElement
	require.NoError(t, xml.Unmarshal(buf.Bytes(), &root), "the SVG is well-formed XML")
	assert.Equal(t, "svg", root.XMLName.Local)
	classes := map[string]int{}
	var texts []string
	fills := map[string]bool{}
	for _, k := range root.Kids {
		classes[k.attr("class")]++
		if k.XMLName.Local == "text" {
			texts = append(texts, k.Text)
		}
		if k.attr("class") == "breaker" {
			fills[k.attr("fill")] = true
		}
	}
	assert.Equal(t, 1, classes["success-rate"], "one success-rate line (no gap in the series)")
	assert.Equal(t, 1, classes["p50"])
	assert.Equal(t, 1, classes["p99"])
	assert.Equal(t, 20, classes["requests"], "a bar per second")
	assert.Equal(t, 2, classes["disruption"], "the fault and the kill are shaded")
	assert.Equal(t, 1, classes["marker"], "the kill is marked")
	assert.Equal(t, 1, classes["warmup"])
	assert.True(t, fills[breakerColours["closed"]] && fills[breakerColours["open"]] && fills[breakerColours["half_open"]],
		"a's band shows closed, open and half-open: %v", fills)
	joined := strings.Join(texts, "\n")
	for _, want := range []string{"sample", "FAILED", "f1 error a", "kill-n2", "a", "b", "closed", "forced_open"} {
		assert.Contains(t, joined, want)
	}
	for _, seg := range (breakerRow{node: "n1", model: "a"}).segments(rep.Recording) {
		assert.Less(t, seg.from, seg.to, "segments are ordered and not empty")
	}
}

func TestReportTable(t *testing.T) {
	rep := sampleReport(t)
	var buf bytes.Buffer
	require.NoError(t, rep.WriteTable(&buf))
	out := buf.String()
	assert.Regexp(t, `(?m)^success_rate\s+>= 99\.00%\s+99\.44%\s+PASS\s+179 of 180$`, out)
	assert.Regexp(t, `(?m)^recovery_time\s+<= 500ms\s+1s\s+FAIL\s+worst of 2$`, out)
	assert.Contains(t, out, "FAILED: 1 of 2 objectives failed")
	assert.Contains(t, out, "disruption kill-n2 (kill): 16.00s to 18.00s")
}

func TestReportWriteFiles(t *testing.T) {
	rep := sampleReport(t)
	dir := filepath.Join(t.TempDir(), "out")
	require.NoError(t, rep.WriteFiles(dir))
	assert.Equal(t, dir, rep.Out)
	for _, name := range []string{ResultsFile, RequestsFile, TimelineFile, ReportFile} {
		f, err := os.Open(filepath.Join(dir, name))
		require.NoError(t, err)
		b, err := io.ReadAll(f)
		require.NoError(t, f.Close())
		require.NoError(t, err)
		assert.NotEmpty(t, b, name)
	}
}

func TestPassed(t *testing.T) {
	rep := sampleReport(t)
	rep.Results = rep.Results[:1]
	assert.True(t, rep.Passed())
	rep.Interrupted = true
	assert.False(t, rep.Passed(), "an interrupted run has not passed")
	rep.Interrupted, rep.Err = false, "boom"
	assert.False(t, rep.Passed(), "a run that could not complete has not passed")
	rep.Err, rep.Results = "", nil
	assert.False(t, rep.Passed(), "no objective: nothing passed")
}
