package chaos

import (
	"time"
)

// Second is one second of a run: the requests started in it and how they
// ended.
type Second struct {
	T           int            `json:"t"` // seconds from the start of the load
	Requests    int            `json:"requests"`
	OK          int            `json:"ok"`
	Errors      int            `json:"errors"`
	Lost        int            `json:"lost"`
	Truncated   int            `json:"truncated"`
	SuccessRate *float64       `json:"success_rate"` // null when no request started
	P50Ms       *float64       `json:"p50_ms"`       // of the successes; null when none
	P99Ms       *float64       `json:"p99_ms"`
	ServedBy    map[string]int `json:"served_by,omitempty"`
	Nodes       map[string]int `json:"nodes,omitempty"`
	Disruptions []string       `json:"disruptions,omitempty"` // ids active at some point of the second
	Warmup      bool           `json:"warmup,omitempty"`
}

// Series cuts the recording into seconds, by the start of each request;
// warmup seconds are included and flagged, abandoned requests left out.
func (rec *Recording) Series() []Second {
	n := int((rec.end() + time.Second - 1) / time.Second)
	out := make([]Second, n)
	lat := make([][]time.Duration, n)
	for i := range out {
		out[i].T = i
		out[i].Warmup = time.Duration(i)*time.Second < rec.Warmup
		from, to := time.Duration(i)*time.Second, time.Duration(i+1)*time.Second
		for _, d := range rec.Disruptions {
			if d.Start < to && d.End > from {
				out[i].Disruptions = append(out[i].Disruptions, d.ID)
			}
		}
	}
	for i := range rec.Requests {
		r := &rec.Requests[i]
		s := int(r.Start / time.Second)
		if r.Outcome == Abandoned || s < 0 || s >= n {
			continue
		}
		sec := &out[s]
		sec.Requests++
		switch r.Outcome {
		case OK:
			sec.OK++
			lat[s] = append(lat[s], r.Latency())
			if sec.ServedBy == nil {
				sec.ServedBy = map[string]int{}
			}
			sec.ServedBy[r.ServedBy]++
		case Lost:
			sec.Lost++
		case Truncated:
			sec.Truncated++
		default:
			sec.Errors++
		}
		if r.Node != "" {
			if sec.Nodes == nil {
				sec.Nodes = map[string]int{}
			}
			sec.Nodes[r.Node]++
		}
	}
	ms := func(d time.Duration) *float64 {
		v := float64(d) / float64(time.Millisecond)
		return &v
	}
	for i := range out {
		if out[i].Requests > 0 {
			v := float64(out[i].OK) / float64(out[i].Requests)
			out[i].SuccessRate = &v
		}
		if len(lat[i]) > 0 {
			out[i].P50Ms = ms(percentile(lat[i], 0.5))
			out[i].P99Ms = ms(percentile(lat[i], 0.99))
		}
	}
	return out
}
