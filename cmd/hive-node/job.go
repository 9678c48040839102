package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/persistence"
)

const jobUsage = `Usage: hive-node job submit|get|watch|list [flags] [args]

Durable jobs: a job is stored in the deployment's JetStream work queue at
once and runs on some node, even if the node that took it dies.

  hive-node job submit --model M [--key K] [--priority P] PROMPT...
      store a job; prints its id. --file F submits an InferRequest in JSON
      instead of --model and PROMPT. --key is its idempotency key: the same
      key and request give the first job's id again (never a second run).
  hive-node job get ID          the job's state, node, deliveries and result
  hive-node job watch ID        wait for the job to end, printing each state;
                                exit 1 when it failed
  hive-node job list            every job the deployment keeps (operator)`

var jobVerbs = []string{"submit", "get", "watch", "list"}

// jobCmd runs `hive-node job VERB`.
func jobCmd(args []string, stdout, stderr io.Writer) error {
	fs, f := newCtlFlags("job", jobUsage, stderr)
	fs.Lookup("node").Usage = "not used by job"
	model := fs.String("model", "", "submit: the model")
	key := fs.String("key", "", "submit: idempotency key (an unguessable value, such as a UUID)")
	priority := fs.String("priority", "normal", "submit: normal, high or critical")
	maxTokens := fs.Int("max-tokens", 0, "submit: max_tokens of the request (0: the model's default)")
	file := fs.String("file", "", "submit: a file holding the InferRequest as JSON (- for standard input)")
	timeout := fs.Duration("timeout", 5*time.Minute, "watch: how long to wait for the end; get and submit: for the answer")
	asJSON := fs.Bool("json", false, "get, list: print JobStatus as JSON")
	pos, err := parseCtl(fs, args, -1, "")
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageError{fmt.Sprintf("job: missing the verb: %s (hive-node help job)", orList(jobVerbs))}
	}
	verb, rest := pos[0], pos[1:]
	if !slices.Contains(jobVerbs, verb) {
		return usageError{fmt.Sprintf("job: unknown verb %q: %s", verb, orList(jobVerbs))}
	}
	if err := bus.ValidPrefix(f.prefix); err != nil {
		return usageError{fmt.Sprintf("--subject-prefix: %v", err)}
	}
	var req *messages.InferRequest
	switch verb {
	case "submit":
		if req, err = jobRequest(*file, *model, *key, *priority, *maxTokens, rest); err != nil {
			return err
		}
	case "get", "watch":
		if len(rest) != 1 {
			return usageError{fmt.Sprintf("job %s: want one job id, got %q", verb, strings.Join(rest, " "))}
		}
	case "list":
		if len(rest) != 0 {
			return usageError{"job list: takes no arguments"}
		}
	}
	nc, err := f.connect(stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	s := bus.NewSubjects(f.prefix)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	switch verb {
	case "submit":
		acc, err := bus.SubmitJob(ctx, nc, s, req)
		if err != nil {
			return err
		}
		if e := acc.GetError(); e != nil {
			return exitError{1, fmt.Sprintf("job submit: %s/%s: %s", e.GetClass(), e.GetCode(), e.GetMessage())}
		}
		if acc.GetDuplicate() {
			fmt.Fprintf(stdout, "%s (duplicate: this key was submitted before; no second run)\n", acc.GetJobId())
			return nil
		}
		fmt.Fprintln(stdout, acc.GetJobId())
		return nil
	case "get":
		st, err := getJob(ctx, nc, s, rest[0], 0)
		if err != nil {
			return err
		}
		return printJob(stdout, st, *asJSON)
	case "watch":
		return watchJob(ctx, nc, s, rest[0], stdout)
	}
	return listJobs(ctx, nc, s, stdout, *asJSON)
}

// jobRequest builds the request of `job submit`.
func jobRequest(file, model, key, priority string, maxTokens int, prompt []string) (*messages.InferRequest, error) {
	req := &messages.InferRequest{}
	if file != "" {
		var body []byte
		var err error
		if file == "-" {
			body, err = io.ReadAll(os.Stdin)
		} else {
			body, err = os.ReadFile(file)
		}
		if err != nil {
			return nil, usageError{fmt.Sprintf("job submit --file: %v", err)}
		}
		if err := protojson.Unmarshal(body, req); err != nil {
			return nil, usageError{fmt.Sprintf("job submit --file %s: not an InferRequest in JSON: %v", file, err)}
		}
	}
	if model != "" {
		req.Model = model
	}
	if len(prompt) > 0 {
		req.Messages = append(req.Messages, &messages.ChatMessage{Role: "user", Content: strings.Join(prompt, " ")})
	}
	if key != "" {
		req.IdempotencyKey = key
	}
	p, ok := messages.InferRequest_Priority_value[priority]
	if !ok {
		return nil, usageError{fmt.Sprintf("job submit --priority %q: want normal, high or critical", priority)}
	}
	if priority != "normal" || req.Priority == 0 {
		req.Priority = messages.InferRequest_Priority(p)
	}
	if maxTokens != 0 {
		req.MaxTokens = int32(maxTokens)
	}
	if req.Model == "" || len(req.Messages) == 0 {
		return nil, usageError{"job submit: give --model and a PROMPT, or --file with an InferRequest"}
	}
	return req, nil
}

// getJob reads a job, turning a refusal into an error.
func getJob(ctx context.Context, nc *nats.Conn, s bus.Subjects, id string, wait time.Duration) (*messages.JobStatus, error) {
	st, err := bus.GetJob(ctx, nc, s, id, wait)
	if err != nil {
		return nil, err
	}
	if e := st.GetError(); e != nil {
		return nil, exitError{1, fmt.Sprintf("job %s: %s: %s", id, e.GetCode(), e.GetMessage())}
	}
	return st, nil
}

// watchJob prints the job's state each time it changes, until it ends.
func watchJob(ctx context.Context, nc *nats.Conn, s bus.Subjects, id string, stdout io.Writer) error {
	last := messages.JobStatus_unknown
	for {
		wait := 30 * time.Second
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl)-time.Second)
		}
		if wait <= 0 {
			return exitError{1, fmt.Sprintf("job %s: still %s when --timeout ran out", id, last)}
		}
		st, err := getJob(ctx, nc, s, id, wait)
		if err != nil {
			return err
		}
		if st.GetState() != last {
			last = st.GetState()
			fmt.Fprintf(stdout, "%s %s%s\n", time.Now().UTC().Format("15:04:05"), last, onNode(st))
		}
		switch last {
		case messages.JobStatus_done:
			return printResult(stdout, st)
		case messages.JobStatus_failed:
			_ = printResult(stdout, st)
			return exitError{1, fmt.Sprintf("job %s failed", id)}
		}
	}
}

func onNode(st *messages.JobStatus) string {
	if st.GetNode() == "" {
		return ""
	}
	return " on " + st.GetNode()
}

// printJob prints one job for people, or as JSON.
func printJob(w io.Writer, st *messages.JobStatus, asJSON bool) error {
	if asJSON {
		b, err := protojson.Marshal(st)
		if err != nil {
			return err
		}
		fmt.Fprintln(w, string(b))
		return nil
	}
	fmt.Fprintf(w, "job %s: %s%s, model %s, delivered %d time(s), submitted %s\n", st.GetJobId(), st.GetState(), onNode(st),
		st.GetModel(), st.GetDeliveries(), st.GetSubmitted().AsTime().UTC().Format(time.RFC3339))
	return printResult(w, st)
}

// printResult prints a job's answer, or its error.
func printResult(w io.Writer, st *messages.JobStatus) error {
	r := st.GetResult()
	switch {
	case r == nil:
	case r.GetError() != nil:
		fmt.Fprintf(w, "error %s/%s: %s\n", r.GetError().GetClass(), r.GetError().GetCode(), r.GetError().GetMessage())
	default:
		fmt.Fprintf(w, "served by %s: %s\n", r.GetServedBy(), r.GetContent())
	}
	return nil
}

// listJobs prints every job record of the deployment.
func listJobs(ctx context.Context, nc *nats.Conn, s bus.Subjects, stdout io.Writer, asJSON bool) error {
	var all []*messages.JobStatus
	err := persistence.ListJobs(ctx, nc, s, func(st *messages.JobStatus) { all = append(all, st) })
	if errors.Is(err, persistence.ErrNoStream) {
		return exitError{1, "job list: no jobs bucket: no node with durable jobs has run on this deployment"}
	}
	if err != nil {
		return err
	}
	slices.SortFunc(all, func(a, b *messages.JobStatus) int {
		return a.GetSubmitted().AsTime().Compare(b.GetSubmitted().AsTime())
	})
	if asJSON {
		for _, st := range all {
			if err := printJob(stdout, st, true); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSTATE\tNODE\tMODEL\tDELIVERIES\tSUBMITTED")
	for _, st := range all {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", st.GetJobId(), st.GetState(), st.GetNode(), st.GetModel(), st.GetDeliveries(),
			st.GetSubmitted().AsTime().UTC().Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d job(s)\n", len(all))
	return nil
}
