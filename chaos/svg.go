package chaos

import (
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Geometry of the SVG timeline.
const (
	svgWidth  = 1100
	svgLeft   = 170 // room for the breaker rows' labels
	svgRight  = 45
	svgPanelH = 130
	svgRowH   = 18
	reqShare  = 0.35 // of panel A's height that the busiest second's bar takes
)

// breakerColours are the fills of the breaker bands, by state.
var breakerColours = map[string]string{
	"closed":       "#43a047",
	"half_open":    "#fbc02d",
	"open":         "#e53935",
	"forced_open":  "#8e24aa",
	"disabled":     "#9e9e9e",
	"metrics_only": "#90caf9",
}

// breakerLegend orders the states in the legend.
var breakerLegend = []string{"closed", "half_open", "open", "forced_open", "disabled", "metrics_only"}

// WriteSVG draws the run as an SVG timeline: the success rate and the
// requests started per second; p50 and p99 latency per second; one band
// per node and model coloured by its breaker's state, from the breaker
// events; disruptions shaded across the panels, kills and partitions
// marked with a line.
func (r *Report) WriteSVG(w io.Writer) error {
	rec := r.Recording
	series := rec.Series()
	total := max(rec.end().Seconds(), 1)
	plotW := float64(svgWidth - svgLeft - svgRight)
	x := func(t float64) float64 { return svgLeft + t/total*plotW }
	rows := r.breakerRows()
	topA, topB := 84.0, 84.0+svgPanelH+40
	topC := topB + svgPanelH + 40
	bottom := topC + float64(max(len(rows), 1)*svgRowH)
	height := bottom + 60

	b := &strings.Builder{}
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%.0f" viewBox="0 0 %d %.0f" font-family="sans-serif" font-size="11">`+"\n", svgWidth, height, svgWidth, height)
	fmt.Fprintf(b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	verdict, colour := "PASSED", "#2e7d32"
	if !r.Passed() {
		verdict, colour = "FAILED", "#c62828"
	}
	short := ""
	if r.Short {
		short = " (short)"
	}
	fmt.Fprintf(b, `<text x="10" y="22" font-size="15" font-weight="bold">%s%s</text>`+"\n", esc(r.Scenario), short)
	fmt.Fprintf(b, `<text x="10" y="40" fill="#555">%s, %s; started %s</text>`+"\n", esc(r.Target), esc(loadString(r.Load)), r.Started.UTC().Format(time.RFC3339))
	fmt.Fprintf(b, `<text x="%d" y="22" font-size="15" font-weight="bold" fill="%s" text-anchor="end">%s</text>`+"\n", svgWidth-svgRight, colour, verdict)

	// Warmup and disruptions, under everything else.
	if rec.Warmup > 0 {
		fmt.Fprintf(b, `<rect class="warmup" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#eeeeee"/>`+"\n", x(0), topA, x(rec.Warmup.Seconds())-x(0), bottom-topA)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" fill="#777">warmup</text>`+"\n", x(0)+3, topA-4)
	}
	for i, d := range rec.Disruptions {
		x0, x1 := x(d.Start.Seconds()), x(min(d.End, rec.end()).Seconds())
		fill := "#e53935"
		if d.nodeLevel() {
			fill = "#5e35b1"
		}
		fmt.Fprintf(b, `<rect class="disruption" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="0.12"><title>%s</title></rect>`+"\n",
			x0, topA, math.Max(x1-x0, 1), bottom-topA, fill, esc(disruptionLabel(d)))
		ly := topA - 4 - float64(i%3)*11
		if rec.Warmup > 0 && i%3 == 0 {
			ly -= 11 // clear of the warmup label
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" fill="%s">%s</text>`+"\n", x0+2, ly, fill, esc(disruptionLabel(d)))
		if d.nodeLevel() {
			fmt.Fprintf(b, `<line class="marker" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2" stroke-dasharray="4 3"/>`+"\n", x0, topA, x0, bottom, fill)
		}
	}

	// Panel A: success rate, with requests per second as bars behind it.
	panel(b, topA, "success rate", "success rate per second (line); requests started per second (bars, scale on the right)")
	maxReq := 1
	for _, s := range series {
		maxReq = max(maxReq, s.Requests)
	}
	for _, s := range series {
		h := float64(s.Requests) / float64(maxReq) * svgPanelH * reqShare
		fmt.Fprintf(b, `<rect class="requests" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#cfd8dc" fill-opacity="0.6"/>`+"\n",
			x(float64(s.T)), topA+svgPanelH-h, math.Max(x(float64(s.T+1))-x(float64(s.T))-1, 0.5), h)
	}
	yA := func(v float64) float64 { return topA + svgPanelH - v*svgPanelH }
	for _, v := range []float64{0, 0.5, 1} {
		gridLine(b, yA(v), fmt.Sprintf("%.0f%%", v*100))
	}
	fmt.Fprintf(b, `<text x="%d" y="%.1f" fill="#78909c">%d/s</text>`+"\n", svgWidth-svgRight+2, topA+svgPanelH*(1-reqShare)+4, maxReq)
	polyline(b, "success-rate", "#2e7d32", series, func(s Second) (float64, bool) {
		if s.SuccessRate == nil {
			return 0, false
		}
		return yA(*s.SuccessRate), true
	}, x)

	// Panel B: latency.
	panel(b, topB, "latency", "latency of the successful requests per second: p50 (blue), p99 (orange)")
	maxMs := 1.0
	for _, s := range series {
		if s.P99Ms != nil {
			maxMs = math.Max(maxMs, *s.P99Ms)
		}
	}
	maxMs = niceCeil(maxMs)
	yB := func(ms float64) float64 { return topB + svgPanelH - ms/maxMs*svgPanelH }
	for _, f := range []float64{0, 0.5, 1} {
		gridLine(b, yB(f*maxMs), fmtMs(f*maxMs))
	}
	polyline(b, "p50", "#1e88e5", series, func(s Second) (float64, bool) {
		if s.P50Ms == nil {
			return 0, false
		}
		return yB(*s.P50Ms), true
	}, x)
	polyline(b, "p99", "#fb8c00", series, func(s Second) (float64, bool) {
		if s.P99Ms == nil {
			return 0, false
		}
		return yB(*s.P99Ms), true
	}, x)

	// Panel C: breaker bands.
	fmt.Fprintf(b, `<text x="%d" y="%.1f" font-weight="bold">breaker state</text>`+"\n", svgLeft, topC-8)
	for i, row := range rows {
		y := topC + float64(i*svgRowH)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", svgLeft-6, y+svgRowH-5, esc(row.label))
		for _, seg := range row.segments(rec) {
			fmt.Fprintf(b, `<rect class="breaker" x="%.1f" y="%.1f" width="%.1f" height="%d" fill="%s"><title>%s %s from %s</title></rect>`+"\n",
				x(seg.from.Seconds()), y+1, math.Max(x(seg.to.Seconds())-x(seg.from.Seconds()), 0.5), svgRowH-2,
				colourOf(seg.state), esc(row.label), seg.state, fmtOffset(seg.from))
		}
	}

	// Time axis and legend.
	step := niceStep(total)
	for t := 0.0; t <= total+1e-9; t += step {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/>`+"\n", x(t), bottom, x(t), bottom+5)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%gs</text>`+"\n", x(t), bottom+18, t)
	}
	ly := bottom + 45
	lx := float64(svgLeft)
	for _, st := range breakerLegend {
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`+"\n", lx, ly-10, breakerColours[st], lx+16, ly, st)
		lx += 100
	}
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="#e53935" fill-opacity="0.25"/><text x="%.1f" y="%.1f">fault</text>`+"\n", lx, ly-10, lx+16, ly)
	lx += 70
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="#5e35b1" fill-opacity="0.25"/><text x="%.1f" y="%.1f">node killed / partitioned</text>`+"\n", lx, ly-10, lx+16, ly)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func esc(s string) string { return html.EscapeString(s) }

func panel(b *strings.Builder, top float64, name, caption string) {
	fmt.Fprintf(b, `<rect x="%d" y="%.1f" width="%d" height="%d" fill="none" stroke="#ccc"/>`+"\n", svgLeft, top, svgWidth-svgLeft-svgRight, svgPanelH)
	fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" font-weight="bold">%s</text>`+"\n", svgLeft-40, top+12, esc(name))
	fmt.Fprintf(b, `<text x="%d" y="%.1f" fill="#555">%s</text>`+"\n", svgLeft+4, top+svgPanelH+14, esc(caption))
}

func gridLine(b *strings.Builder, y float64, label string) {
	fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>`+"\n", svgLeft, y, svgWidth-svgRight, y)
	fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" fill="#777">%s</text>`+"\n", svgLeft-6, y+4, label)
}

// polyline draws one line per run of seconds that have a value.
func polyline(b *strings.Builder, class, colour string, series []Second, y func(Second) (float64, bool), x func(float64) float64) {
	var pts []string
	flush := func() {
		if len(pts) > 0 {
			fmt.Fprintf(b, `<polyline class="%s" fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", class, colour, strings.Join(pts, " "))
		}
		pts = pts[:0]
	}
	for _, s := range series {
		v, ok := y(s)
		if !ok {
			flush()
			continue
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(float64(s.T)+0.5), v))
	}
	flush()
}

func colourOf(state string) string {
	if c, ok := breakerColours[state]; ok {
		return c
	}
	return "#ffffff"
}

func fmtMs(ms float64) string {
	if ms >= 1000 {
		return fmt.Sprintf("%gs", math.Round(ms/100)/10)
	}
	return fmt.Sprintf("%gms", math.Round(ms))
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// niceStep picks the time axis' tick spacing, in seconds.
func niceStep(total float64) float64 {
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600} {
		if total/s <= 15 {
			return s
		}
	}
	return 1200
}

func disruptionLabel(d Disruption) string {
	if d.nodeLevel() && d.ID == d.Kind+"-"+d.Node {
		return d.ID // kill-n2
	}
	target := d.Model
	if d.nodeLevel() {
		target = d.Node
	} else if d.Node != "all" {
		target += "@" + d.Node
	}
	return fmt.Sprintf("%s %s %s", d.ID, d.Kind, target)
}

// breakerRow is one band of panel C: a model on a node.
type breakerRow struct {
	node, model, label string
}

type segment struct {
	state    string
	from, to time.Duration
}

// breakerRows lists a band per node and model: the configured ones, and
// any other a breaker event names.
func (r *Report) breakerRows() []breakerRow {
	seen := map[[2]string]bool{}
	var rows []breakerRow
	add := func(node, model string) {
		if seen[[2]string{node, model}] {
			return
		}
		seen[[2]string{node, model}] = true
		label := model
		if len(r.Nodes) > 1 || node != "" && !slices.Contains(r.Nodes, node) {
			label = node + "/" + model
		}
		rows = append(rows, breakerRow{node: node, model: model, label: label})
	}
	for _, n := range r.Nodes {
		for _, m := range r.Models {
			add(n, m)
		}
	}
	for _, e := range r.Recording.Events {
		if e.Kind == "breaker" {
			add(e.Node, e.Model)
		}
	}
	return rows
}

// segments replays the row's breaker events into periods of one state.
func (row breakerRow) segments(rec *Recording) []segment {
	state := "closed"
	if s, ok := rec.Breakers0[row.node+"/"+row.model]; ok {
		state = s
	}
	var out []segment
	from := time.Duration(0)
	for _, e := range rec.Events {
		if e.Kind != "breaker" || e.Node != row.node || e.Model != row.model || e.To == state {
			continue
		}
		if e.At > from {
			out = append(out, segment{state, from, e.At})
		}
		state, from = e.To, e.At
	}
	if end := rec.end(); end > from {
		out = append(out, segment{state, from, end})
	}
	return out
}
