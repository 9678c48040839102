package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/cmmv-hive/resilience/messages"
)

// The admin commands: the last token of hive.v1.admin.<node|all>.<command>.
const (
	CmdStatus       = "status"
	CmdBreakerOpen  = "breaker_open"
	CmdBreakerClose = "breaker_close"
	CmdBreakerReset = "breaker_reset"
	CmdModelEnable  = "model_enable"
	CmdModelDisable = "model_disable"
	CmdDrain        = "drain"
	CmdAlertAck     = "alert_ack"
)

// AdminCommands lists every admin command, in the order help shows them.
var AdminCommands = []string{CmdStatus, CmdBreakerOpen, CmdBreakerClose, CmdBreakerReset,
	CmdModelEnable, CmdModelDisable, CmdDrain, CmdAlertAck}

// modelCommands are the commands that act on one model.
var modelCommands = []string{CmdBreakerOpen, CmdBreakerClose, CmdBreakerReset, CmdModelEnable, CmdModelDisable}

// AdminHandler carries out admin commands on one node. Its methods run on
// the NATS callback of the admin subscription, one at a time; they may
// block briefly (an actor's answer), not on the network. An error matching
// ErrNotFound is answered with the not_found code.
type AdminHandler interface {
	// Status returns the node's status.
	Status() *messages.NodeStatus
	// Control applies a model command (CmdBreakerOpen ... CmdModelDisable)
	// and returns the model's status after it.
	Control(command string, cmd *messages.AdminCommand) (*messages.ModelStatus, error)
	// Drain stops the node taking new requests.
	Drain() error
	// AckAlert acknowledges a firing alert.
	AckAlert(id, actor string) (*messages.Alert, error)
}

// ErrNotFound is what an AdminHandler returns, wrapped, for an unknown
// model or alert.
var ErrNotFound = errors.New("not found")

// AdminConfig configures StartAdmin.
type AdminConfig struct {
	Conn     *nats.Conn // required
	Subjects Subjects
	Node     string       // this node's name; required
	Handler  AdminHandler // required
	Logger   zerolog.Logger
	// Events, when set, gives the encoding of the audit records (the
	// node's event encoding); nil means JSON.
	Events *Events
	// Replies decides which reply subjects get an answer; nil allows
	// DefaultReplyPrefixes. A command whose reply subject it refuses is
	// not carried out.
	Replies *ReplyGuard
}

// Admin answers hive.v1.admin.<node>.<command> and
// hive.v1.admin.all.<command> (every node answers the latter, so a client
// gathers one reply per node). The body is an AdminCommand, protobuf or
// JSON as for infer, and the reply an AdminReply in the same encoding.
//
// Every command that changes something is published on
// hive.v1.events.admin.<node>.<command> as the AdminCommand with its actor:
// the audit trail keeps it. The actor is the NATS user from the
// Nats-Request-Info header when the server adds one (an admin subject
// imported from another account with share: true); otherwise the actor the
// client declared, marked "(claimed)"; otherwise "unknown". Restrict who
// may publish on admin subjects with NATS permissions (see
// deploy/nats-server.conf).
type Admin struct {
	cfg  AdminConfig
	subs []*nats.Subscription
}

// StartAdmin subscribes the admin subjects of cfg.Node.
func StartAdmin(cfg AdminConfig) (*Admin, error) {
	switch {
	case cfg.Conn == nil:
		return nil, errors.New("bus: AdminConfig.Conn is required")
	case cfg.Handler == nil:
		return nil, errors.New("bus: AdminConfig.Handler is required")
	}
	if err := ValidToken("node", cfg.Node); err != nil {
		return nil, fmt.Errorf("bus: admin: %w", err)
	}
	a := &Admin{cfg: cfg}
	subs, err := subscribeAll(cfg.Conn, a.handle, cfg.Subjects.Admin(cfg.Node, "*"), cfg.Subjects.AdminAll("*"))
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	a.subs = subs
	return a, nil
}

// Stop unsubscribes.
func (a *Admin) Stop() {
	unsubscribeAll(a.subs)
	a.subs = nil
}

// subscribeAll subscribes handler to every subject and flushes, so the
// server has them all when it returns; on an error it undoes what it did.
func subscribeAll(nc *nats.Conn, handler nats.MsgHandler, subjects ...string) ([]*nats.Subscription, error) {
	var subs []*nats.Subscription
	for _, subject := range subjects {
		sub, err := nc.Subscribe(subject, handler)
		if err != nil {
			unsubscribeAll(subs)
			return nil, fmt.Errorf("subscribe %s: %w", subject, err)
		}
		subs = append(subs, sub)
	}
	if err := nc.Flush(); err != nil {
		unsubscribeAll(subs)
		return nil, fmt.Errorf("flush subscriptions: %w", err)
	}
	return subs, nil
}

func unsubscribeAll(subs []*nats.Subscription) {
	for _, s := range subs {
		_ = s.Unsubscribe()
	}
}

func (a *Admin) handle(msg *nats.Msg) {
	if msg.Reply != "" && !a.cfg.Replies.Check("admin", msg.Subject, msg.Reply) {
		return
	}
	command := msg.Subject[strings.LastIndexByte(msg.Subject, '.')+1:]
	enc := DetectEncoding(msg.Header, msg.Data)
	cmd := &messages.AdminCommand{}
	reply := a.run(command, enc, msg, cmd)
	reply.Node = a.cfg.Node
	if reply.Ok && command != CmdStatus {
		a.audit(command, cmd)
	}
	if msg.Reply == "" {
		return
	}
	if err := publish(a.cfg.Conn, msg.Reply, enc, reply); err != nil {
		a.cfg.Logger.Warn().Err(err).Str("command", command).Msg("admin reply not sent")
	}
}

// run decodes and carries out one command.
func (a *Admin) run(command string, enc Encoding, msg *nats.Msg, cmd *messages.AdminCommand) *messages.AdminReply {
	if !slices.Contains(AdminCommands, command) {
		return adminError("unknown_command", "unknown admin command %q (known: %s)", command, strings.Join(AdminCommands, ", "))
	}
	if err := CheckType(msg.Header, cmd); err != nil {
		return adminError("wrong_type", "refused: %v (the hive-node CLI sets it; with the nats CLI add -H '%s:%s')", err, TypeHeader, TypeName(cmd))
	}
	if len(msg.Data) > 0 {
		if err := Decode(enc, msg.Data, cmd); err != nil {
			return adminError("malformed_command", "the body is not an AdminCommand in %s: %v", enc, err)
		}
	}
	cmd.Actor = actorOf(msg.Header, cmd.GetActor())
	log := a.cfg.Logger.With().Str("command", command).Str("actor", cmd.GetActor()).Str("model", cmd.GetModel()).Logger()
	h := a.cfg.Handler
	switch {
	case command == CmdStatus:
		return &messages.AdminReply{Ok: true, Status: h.Status()}
	case command == CmdDrain:
		if err := h.Drain(); err != nil {
			return adminFailure(err)
		}
		log.Info().Msg("draining on an operator's command")
		return &messages.AdminReply{Ok: true, Message: "drained: no longer in the infer queue group; HTTP requests get no_capacity (draining)"}
	case command == CmdAlertAck:
		if cmd.GetAlertId() == "" {
			return adminError("bad_request", "alert_ack needs alertId")
		}
		al, err := h.AckAlert(cmd.GetAlertId(), cmd.GetActor())
		if err != nil {
			return adminFailure(err)
		}
		log.Info().Str("alert", al.GetId()).Msg("alert acknowledged")
		return &messages.AdminReply{Ok: true, Message: fmt.Sprintf("alert %s (%s) acknowledged", al.GetId(), al.GetRule())}
	case slices.Contains(modelCommands, command):
		if cmd.GetModel() == "" {
			return adminError("bad_request", "%s needs a model", command)
		}
		st, err := h.Control(command, cmd)
		if err != nil {
			return adminFailure(err)
		}
		log.Info().Msg("operator command applied")
		return &messages.AdminReply{Ok: true, Message: fmt.Sprintf("%s %s: breaker %s, health %s, enabled %t",
			command, st.GetName(), st.GetBreaker(), st.GetHealth(), st.GetEnabled()),
			Status: &messages.NodeStatus{Node: a.cfg.Node, Models: []*messages.ModelStatus{st}}}
	}
	return adminError("unknown_command", "unknown admin command %q", command)
}

// audit publishes an applied command on hive.v1.events.admin.<node>.<command>.
func (a *Admin) audit(command string, cmd *messages.AdminCommand) {
	if err := publish(a.cfg.Conn, a.cfg.Subjects.AdminAudit(a.cfg.Node, command), a.cfg.Events.Encoding(), cmd); err != nil {
		a.cfg.Logger.Warn().Err(err).Str("command", command).Msg("admin audit event not published")
	}
}

// requestInfo is the part of nats-server's Nats-Request-Info header we read.
type requestInfo struct {
	User    string `json:"user"`
	Account string `json:"acc"`
	Name    string `json:"name"`
}

// actorOf names who sent a command: the server's word when it gave one,
// else the client's, marked as claimed.
func actorOf(h nats.Header, claimed string) string {
	if raw := headerValue(h, "Nats-Request-Info"); raw != "" {
		var ri requestInfo
		if json.Unmarshal([]byte(raw), &ri) == nil && (ri.User != "" || ri.Name != "") {
			who := ri.User
			if who == "" {
				who = ri.Name
			}
			if ri.Account != "" {
				who += "@" + ri.Account
			}
			return who
		}
	}
	if claimed = strings.TrimSpace(claimed); claimed != "" {
		if strings.HasSuffix(claimed, " (claimed)") {
			return claimed
		}
		return claimed + " (claimed)"
	}
	return "unknown"
}

func adminError(code, format string, args ...any) *messages.AdminReply {
	return &messages.AdminReply{Error: messages.Failure(messages.ErrorClass_bad_request, code, format, args...)}
}

func adminFailure(err error) *messages.AdminReply {
	if errors.Is(err, ErrNotFound) {
		return adminError("not_found", "%v", err)
	}
	return &messages.AdminReply{Error: messages.Failure(messages.ErrorClass_server_error, "failed", "%v", err)}
}

// AdminRequestTimeout is how long AdminRequest waits for replies by default.
const AdminRequestTimeout = 3 * time.Second
