package chaos

import (
	"fmt"
	"strings"
	"time"
)

// Progress line refresh periods.
const (
	terminalRefresh = 250 * time.Millisecond
	logRefresh      = 5 * time.Second
)

// progress shows how far the load is until done is closed: a bar redrawn
// in place on a terminal, a line every few seconds otherwise.
func (r *runner) progress(done <-chan struct{}) {
	if r.o.Progress == nil {
		return
	}
	every := logRefresh
	if r.o.Terminal {
		every = terminalRefresh
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-done:
			r.drawProgress(true)
			return
		case <-tick.C:
			r.drawProgress(false)
		}
	}
}

func (r *runner) drawProgress(last bool) {
	total := r.sc.Load.Duration
	elapsed := min(time.Since(r.rec.t0), total)
	finished, ok := r.rec.finished.Load(), r.rec.ok.Load()
	inFlight := r.rec.started.Load() - finished
	rate := "-"
	if finished > 0 {
		rate = fmt.Sprintf("%.1f%%", float64(ok)/float64(finished)*100)
	}
	line := fmt.Sprintf("%5.1fs/%s  %d requests (%d in flight)  %s ok", elapsed.Seconds(), total, finished, inFlight, rate)
	r.logMu.Lock()
	defer r.logMu.Unlock()
	if !r.o.Terminal {
		fmt.Fprintf(r.o.Progress, "chaos: %s\n", line)
		return
	}
	const width = 30
	filled := int(float64(width) * elapsed.Seconds() / total.Seconds())
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	end := ""
	if last {
		end = "\n"
	}
	fmt.Fprintf(r.o.Progress, "\r\033[K[%s] %s%s", bar, line, end)
}
