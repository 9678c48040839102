package bus

import (
	"fmt"
	"strings"
)

// Every NATS subject Hive uses is built in this file, so the hierarchy the
// README lists under "Using it over NATS" lives in one place.

// QueueGroup is the queue group every node's infer endpoint joins, so that
// each request reaches exactly one node.
const QueueGroup = "hive"

// ServiceName is the name the ingress registers with the NATS services
// framework: `nats micro info hive` finds every node.
const ServiceName = "hive"

// DefaultPrefix is the first subject token when no prefix is configured.
const DefaultPrefix = "hive"

// version is the wire contract version, the token after the prefix.
const version = "v1"

// allNodes is the node token that addresses every node at once.
const allNodes = "all"

// Subjects builds Hive's subjects under one prefix. The zero value uses
// DefaultPrefix. The node, model, severity, rule and command arguments must
// be valid tokens (see ValidToken): the builders do not check them, because
// names are validated once, when configuration is loaded.
type Subjects struct {
	prefix string
}

// NewSubjects returns the subject builder for prefix; "" means DefaultPrefix
// ("hive"). A prefix may have several tokens ("acme.hive"); check it with
// ValidPrefix.
func NewSubjects(prefix string) Subjects {
	return Subjects{prefix: prefix}
}

// Prefix returns the prefix in use, DefaultPrefix when none was given.
func (s Subjects) Prefix() string {
	if s.prefix == "" {
		return DefaultPrefix
	}
	return s.prefix
}

// join builds <prefix>.v1.<tokens...>.
func (s Subjects) join(tokens ...string) string {
	return s.Prefix() + "." + version + "." + strings.Join(tokens, ".")
}

// Infer is the request-reply subject for inference: hive.v1.infer.
func (s Subjects) Infer() string { return s.join("infer") }

// InferModel is the subject of one model's requests, which only the nodes
// serving that model answer: hive.v1.infer.<model>. A node that receives a
// request on Infer for a model it lacks forwards it here.
func (s Subjects) InferModel(model string) string { return s.join("infer", model) }

// Health is where a model's health changes are published:
// hive.v1.events.health.<node>.<model>.
func (s Subjects) Health(node, model string) string {
	return s.join("events", "health", node, model)
}

// Breaker is where a model's breaker transitions are published:
// hive.v1.events.breaker.<node>.<model>.
func (s Subjects) Breaker(node, model string) string {
	return s.join("events", "breaker", node, model)
}

// Recovery is where restarts, ramp steps and manual actions are published:
// hive.v1.events.recovery.<node>.<model>.
func (s Subjects) Recovery(node, model string) string {
	return s.join("events", "recovery", node, model)
}

// Alert is where alerts are published: hive.v1.events.alert.<severity>.<rule>.
func (s Subjects) Alert(severity, rule string) string {
	return s.join("events", "alert", severity, rule)
}

// AdminAudit is where a node records an applied admin command, the
// AdminCommand with its actor: hive.v1.events.admin.<node>.<command>.
func (s Subjects) AdminAudit(node, command string) string {
	return s.join("events", "admin", node, command)
}

// Events is the wildcard matching every event above: hive.v1.events.>.
// It is for subscribers; never publish to it.
func (s Subjects) Events() string { return s.join("events", ">") }

// Admin is one node's admin command subject: hive.v1.admin.<node>.<command>.
func (s Subjects) Admin(node, command string) string {
	return s.join("admin", node, command)
}

// AdminAll is the admin command subject every node listens on:
// hive.v1.admin.all.<command>.
func (s Subjects) AdminAll(command string) string {
	return s.join("admin", allNodes, command)
}

// ChaosInject is where faults are injected into a node (only when chaos is
// enabled): hive.v1.chaos.<node>.inject.
func (s Subjects) ChaosInject(node string) string {
	return s.join("chaos", node, "inject")
}

// ChaosClear is where a node's injected faults are cleared:
// hive.v1.chaos.<node>.clear.
func (s Subjects) ChaosClear(node string) string {
	return s.join("chaos", node, "clear")
}

// JobsSubmit is where durable jobs are submitted (request-reply:
// InferRequest -> JobAccepted): hive.v1.jobs.submit.
func (s Subjects) JobsSubmit() string { return s.join("jobs", "submit") }

// JobsGet is where a job's state is read (request-reply: JobQuery ->
// JobStatus): hive.v1.jobs.get.
func (s Subjects) JobsGet() string { return s.join("jobs", "get") }

// JobsDone is where a job's JobStatus is published when it ends:
// hive.v1.jobs.done.<job_id>.
func (s Subjects) JobsDone(id string) string { return s.join("jobs", "done", id) }

// JobsQueue is the subject a submitted job is stored under in the
// JetStream work queue, one per priority class ("normal", "critical"):
// hive.v1.jobs.queue.<class>. Nothing subscribes to it in core NATS.
func (s Subjects) JobsQueue(class string) string { return s.join("jobs", "queue", class) }

// JobsQueues is the wildcard of every JobsQueue subject, for the stream:
// hive.v1.jobs.queue.>.
func (s Subjects) JobsQueues() string { return s.join("jobs", "queue", ">") }

// tokenError says why a name cannot be a subject token. It matches
// ErrInvalidName.
type tokenError struct {
	kind, name, reason string
}

func (e *tokenError) Error() string {
	if e.name == "" {
		return fmt.Sprintf("%s name %s", e.kind, e.reason)
	}
	return fmt.Sprintf("%s name %q %s", e.kind, e.name, e.reason)
}

func (e *tokenError) Is(target error) bool { return target == ErrInvalidName }

// ValidToken checks that s can be one subject token: non-empty and made of
// ASCII letters, digits, '_' and '-' only, so it holds no dot, space or
// wildcard. kind names what s is ("node", "model", ...) in the error, which
// matches ErrInvalidName and says why: `node name "a.b" contains '.'`.
// The node name "all" is refused because hive.v1.admin.all.* addresses every
// node.
func ValidToken(kind, s string) error {
	if s == "" {
		return &tokenError{kind: kind, reason: "is empty"}
	}
	for _, r := range s {
		if !tokenRune(r) {
			return &tokenError{kind: kind, name: s, reason: fmt.Sprintf("contains %q", r)}
		}
	}
	if kind == "node" && s == allNodes {
		return &tokenError{kind: kind, name: s, reason: "is reserved: admin subjects use it to address every node"}
	}
	return nil
}

// ValidPrefix checks a subject prefix: one or more valid tokens joined by
// dots ("hive", "acme.hive"). The empty prefix is valid and means
// DefaultPrefix.
func ValidPrefix(p string) error {
	if p == "" {
		return nil
	}
	for tok := range strings.SplitSeq(p, ".") {
		if err := ValidToken("prefix", tok); err != nil {
			return fmt.Errorf("subject prefix %q: %w", p, err)
		}
	}
	return nil
}

func tokenRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
}
