package persistence

import (
	"fmt"
	"strings"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// timeFormat is RFC 3339 in UTC with milliseconds, fixed width so that
// lines align.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// FormatEntry renders e as one line for people: time, kind, who, what.
//
//	2026-11-27T04:05:06.123Z breaker  node-a/gpt-5 closed -> open (threshold) failures 5/5
//	2026-11-27T04:05:06.123Z recovery node-a/gpt-5 manual_action breaker_open by alice: reason
//	2026-11-27T04:05:06.123Z alert    critical open_breakers fired: 2 breakers open (node-a)
//	2026-11-27T04:05:06.123Z admin    node-a breaker_open gpt-5 by alice
//
// It needs no JetStream: `hive-node events` formats live events with it
// too (see DecodeEvent). An entry without Event shows its subject.
func FormatEntry(e Entry) string {
	head := fmt.Sprintf("%s %-8s ", e.Time.UTC().Format(timeFormat), e.Kind)
	var b strings.Builder
	switch m := e.Event.(type) {
	case *messages.HealthChanged:
		fmt.Fprintf(&b, "%s %s -> %s", who(e), m.GetFrom(), m.GetTo())
		if m.GetReason() != "" {
			fmt.Fprintf(&b, ": %s", m.GetReason())
		}
	case *messages.BreakerTransition:
		fmt.Fprintf(&b, "%s %s -> %s", who(e), m.GetFrom(), m.GetTo())
		if m.GetReason() != messages.BreakerTransition_unspecified {
			fmt.Fprintf(&b, " (%s)", m.GetReason())
		}
		if ev := m.GetEvidence(); ev.GetCalls() > 0 {
			fmt.Fprintf(&b, " failures %d/%d", ev.GetFailures(), ev.GetCalls())
		}
		if m.GetOpenUntil() != nil {
			fmt.Fprintf(&b, " until %s", m.GetOpenUntil().AsTime().UTC().Format(timeFormat))
		}
		by(&b, m.GetActor())
	case *messages.RecoveryEvent:
		fmt.Fprintf(&b, "%s %s", who(e), m.GetKind())
		if m.GetTrigger() != "" {
			fmt.Fprintf(&b, " %s", m.GetTrigger())
		}
		if m.GetAttempt() > 0 {
			fmt.Fprintf(&b, " attempt %d", m.GetAttempt())
		}
		if m.GetKind() == messages.RecoveryEvent_ramp_step {
			fmt.Fprintf(&b, " ramp %d%%", m.GetRampPercent())
		}
		by(&b, m.GetActor())
		if m.GetDetail() != "" {
			fmt.Fprintf(&b, ": %s", m.GetDetail())
		}
	case *messages.Alert:
		fmt.Fprintf(&b, "%s %s %s", m.GetSeverity(), m.GetRule(), m.GetState())
		by(&b, m.GetActor())
		if m.GetMessage() != "" {
			fmt.Fprintf(&b, ": %s", m.GetMessage())
		}
		if e.Node != "" || e.Model != "" {
			fmt.Fprintf(&b, " (%s)", strings.Trim(e.Node+"/"+e.Model, "/"))
		}
	case *messages.AdminCommand:
		fmt.Fprintf(&b, "%s %s", e.Node, lastToken(e.Subject))
		if m.GetModel() != "" {
			fmt.Fprintf(&b, " %s", m.GetModel())
		}
		if m.GetAlertId() != "" {
			fmt.Fprintf(&b, " alert %s", m.GetAlertId())
		}
		if m.GetDurationMs() > 0 {
			fmt.Fprintf(&b, " for %s", time.Duration(m.GetDurationMs())*time.Millisecond)
		}
		by(&b, m.GetActor())
		if m.GetReason() != "" {
			fmt.Fprintf(&b, ": %s", m.GetReason())
		}
	default:
		fmt.Fprintf(&b, "%s (not decoded)", e.Subject)
	}
	return head + b.String()
}

// who is "node/model" for the events of one model.
func who(e Entry) string { return e.Node + "/" + e.Model }

// by names who did a manual action.
func by(b *strings.Builder, actor string) {
	if actor != "" {
		fmt.Fprintf(b, " by %s", actor)
	}
}

func lastToken(subject string) string {
	return subject[strings.LastIndexByte(subject, '.')+1:]
}
