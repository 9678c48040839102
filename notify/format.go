package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cmmv-hive/resilience/messages"
)

// Formats of a Hook.
const (
	// FormatJSON posts the Alert as protojson (lowerCamelCase field names,
	// enums as names, every field present, so a fired info alert still
	// says "state": "fired", "severity": "info").
	FormatJSON = "json"
	// FormatSlack posts {"text": "..."} with one line, as Slack incoming
	// webhooks (and Mattermost, Discord's /slack endpoint) take it.
	FormatSlack = "slack"
)

var alertJSON = protojson.MarshalOptions{EmitUnpopulated: true}

// encode renders a in format.
func encode(format string, a *messages.Alert) ([]byte, error) {
	if format == FormatSlack {
		return json.Marshal(struct {
			Text string `json:"text"`
		}{SlackLine(a)})
	}
	return alertJSON.Marshal(a)
}

// SlackLine is the one-line text of a in the slack format, as
// "[CRITICAL] open_breakers fired on node-a: 2 breakers open: a, b", with
// " (by alice)" after an acknowledgement.
func SlackLine(a *messages.Alert) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %s %s on %s", strings.ToUpper(a.GetSeverity().String()), a.GetRule(), a.GetState(), a.GetNode())
	if msg := oneLine(a.GetMessage()); msg != "" {
		b.WriteString(": ")
		b.WriteString(msg)
	}
	if a.GetActor() != "" && a.GetState() == messages.Alert_acknowledged {
		fmt.Fprintf(&b, " (by %s)", oneLine(a.GetActor()))
	}
	return b.String()
}

// oneLine folds every run of whitespace, line breaks included, into one
// space.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// redact returns err's text without rawURL or its parts that could carry a
// secret (user info, path, query). net/http's *url.Error quotes the whole
// URL; its inner error names at most the host and port.
func redact(err error, rawURL string) error {
	var cause error // kept for errors.Is only when its text cannot hold the URL
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err
		err = fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	msg := err.Error()
	secrets := []string{rawURL}
	if u, perr := url.Parse(rawURL); perr == nil {
		secrets = append(secrets, u.User.String(), u.EscapedPath(), u.Path, u.RawQuery, u.Fragment)
	}
	for _, s := range secrets {
		if len(s) > 1 { // "/" and "" say nothing and are everywhere
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return &deliveryError{msg: msg, err: cause}
}

// deliveryError is a failed attempt with the URL taken out of its text; it
// unwraps to the transport's cause (a timeout, a refused connection) when
// there is one.
type deliveryError struct {
	msg string
	err error
}

func (e *deliveryError) Error() string { return e.msg }
func (e *deliveryError) Unwrap() error { return e.err }
