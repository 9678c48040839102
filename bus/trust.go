package bus

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"
)

// Two rules keep a message of one kind from ever being taken for another,
// whoever sent it. NATS checks who may publish on a subject, but not where
// a reply goes: a node answers on the reply subject the request names, with
// its own connection, and the server lets it through (allow_responses).
// So a node sends replies only to inbox subjects (ReplyGuard), and every
// consumer of Hive's own subjects accepts only messages that declare their
// type (TypeHeader), which nodes and the CLI set on everything they send.

// TypeHeader is the header that names the Hive message a NATS message
// carries, as protobuf's full name: "hive.v1.AdminCommand". Admin, chaos
// and event consumers, and the clients reading admin and chaos replies,
// refuse a message without the type they expect.
const TypeHeader = "Hive-Type"

// ErrWrongType marks a message whose TypeHeader is missing or names
// another type than the one expected.
var ErrWrongType = errors.New("wrong message type")

// TypeName returns m's type as TypeHeader carries it.
func TypeName(m proto.Message) string {
	return string(m.ProtoReflect().Descriptor().FullName())
}

// DecodeTyped decodes body into m, in the encoding its headers or first
// byte select (see DetectEncoding), after checking that h declares m's
// type. A missing or different type matches ErrWrongType; a body that does
// not decode, ErrDecode.
func DecodeTyped(h nats.Header, body []byte, m proto.Message) error {
	if err := CheckType(h, m); err != nil {
		return err
	}
	return Decode(DetectEncoding(h, body), body, m)
}

// CheckType checks that h declares m's type; the error matches
// ErrWrongType.
func CheckType(h nats.Header, m proto.Message) error {
	want := TypeName(m)
	switch got := headerValue(h, TypeHeader); got {
	case want:
		return nil
	case "":
		return fmt.Errorf("%w: no %s header (want %s)", ErrWrongType, TypeHeader, want)
	default:
		return fmt.Errorf("%w: %s %q, want %s", ErrWrongType, TypeHeader, printableHeader(got), want)
	}
}

// printableHeader bounds a header value quoted in an error.
func printableHeader(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

// DefaultReplyPrefixes are the reply subjects a node answers when none are
// configured: nats.go's default inbox "_INBOX." and every private inbox
// prefix of the form "_INBOX_<user>." (nats.CustomInboxPrefix). No Hive
// subject, and no JetStream or system subject, starts with either.
var DefaultReplyPrefixes = []string{"_INBOX.", "_INBOX_"}

// refusedLogEvery bounds the log of refused replies: one line per period,
// with the count of the ones it did not log.
const refusedLogEvery = time.Minute

// ReplyGuard decides which reply subjects a node may publish to: only
// literal subjects under one of its prefixes. A refused reply is counted,
// handed to OnRefused (for the metric) and logged, once per minute at most.
// A nil *ReplyGuard uses DefaultReplyPrefixes and logs nothing. It is safe
// for concurrent use.
type ReplyGuard struct {
	prefixes  []string
	log       zerolog.Logger
	onRefused func(endpoint string)
	refused   atomic.Int64

	mu      sync.Mutex // guards next and skipped
	next    time.Time  // when the next refusal is logged
	skipped int        // refusals not logged since the last line
}

// NewReplyGuard returns a guard that allows reply subjects under prefixes
// (DefaultReplyPrefixes when empty). onRefused, when not nil, is called
// with the endpoint ("infer", "admin", "chaos") of every refused reply.
// The prefixes are taken as given: config checks that none covers a Hive
// subject.
func NewReplyGuard(prefixes []string, log zerolog.Logger, onRefused func(endpoint string)) *ReplyGuard {
	if len(prefixes) == 0 {
		prefixes = DefaultReplyPrefixes
	}
	return &ReplyGuard{prefixes: append([]string(nil), prefixes...), log: log, onRefused: onRefused}
}

// Allowed reports whether a node may answer on reply: a literal subject
// (no wildcard token, no space) under one of the prefixes.
func (g *ReplyGuard) Allowed(reply string) bool {
	prefixes := DefaultReplyPrefixes
	if g != nil {
		prefixes = g.prefixes
	}
	if !literalSubject(reply) {
		return false
	}
	for _, p := range prefixes {
		if len(reply) > len(p) && strings.HasPrefix(reply, p) {
			return true
		}
	}
	return false
}

// Check reports whether a node may answer a message received on subject
// with reply subject reply; when not, it counts and logs the refusal.
func (g *ReplyGuard) Check(endpoint, subject, reply string) bool {
	if g.Allowed(reply) {
		return true
	}
	if g == nil {
		return false
	}
	g.refused.Add(1)
	if g.onRefused != nil {
		g.onRefused(endpoint)
	}
	now := time.Now()
	g.mu.Lock()
	if now.Before(g.next) {
		g.skipped++
		g.mu.Unlock()
		return false
	}
	skipped := g.skipped
	g.next, g.skipped = now.Add(refusedLogEvery), 0
	g.mu.Unlock()
	g.log.Warn().Str("endpoint", endpoint).Str("subject", subject).Str("reply", printableHeader(reply)).
		Int("not_logged_since_last", skipped).Strs("allowed_prefixes", g.prefixes).
		Msg("request dropped: its reply subject is not an inbox (replies go only to the configured reply prefixes)")
	return false
}

// Refused returns how many replies g refused.
func (g *ReplyGuard) Refused() int64 {
	if g == nil {
		return 0
	}
	return g.refused.Load()
}

// literalSubject reports whether s is a publishable subject: non-empty
// tokens, none of them a wildcard, no whitespace.
func literalSubject(s string) bool {
	if s == "" {
		return false
	}
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return false
		}
	}
	return !strings.ContainsAny(s, " \t\r\n")
}
