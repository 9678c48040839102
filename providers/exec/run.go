package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
)

// pipeGrace is how long after the command exits its pipes are kept open
// for a child that escaped the process group.
const pipeGrace = time.Second

// run is one running command. The caller reads stdout, then calls finish
// (or kill, then finish); the goroutines it starts end before finish
// returns.
type run struct {
	name   string
	cmd    *exec.Cmd
	ctx    context.Context // the call's context with Timeout applied
	cancel context.CancelFunc
	stdout *os.File // our end of the command's standard output

	exited chan struct{} // closed when the command exited and its group was killed
	// Set before exited is closed.
	waitErr error
	ctxErr  error // the context's error when the command exited: it was killed for it

	stderr     tail
	stderrDone chan struct{} // closed when the standard error copy ended
	pipes      []*os.File    // our ends, closed by closePipes
	pipesOnce  sync.Once
	done       chan struct{} // closed by finish: the waiter need not cut the pipes
	doneOnce   sync.Once
	wg         sync.WaitGroup
}

// start runs the command for req.
func (m *Model) start(ctx context.Context, req *messages.InferRequest) (*run, error) {
	prompt := Prompt(req)
	args := m.args(prompt)
	var cancel context.CancelFunc
	if m.cfg.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, m.cfg.Timeout)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	if err := ctx.Err(); err != nil {
		cancel()
		return nil, providers.Classify(err)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = m.cfg.Dir
	if len(m.cfg.Env) > 0 {
		cmd.Env = append(os.Environ(), m.cfg.Env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }

	r := &run{name: m.cfg.Name, cmd: cmd, ctx: ctx, cancel: cancel, exited: make(chan struct{}), done: make(chan struct{}), stderrDone: make(chan struct{})}
	r.stderr.max = stderrTail
	var childEnds []*os.File
	fail := func(err error) (*run, error) {
		for _, f := range append(childEnds, r.pipes...) {
			f.Close()
		}
		cancel()
		return nil, classifyStart(m.cfg.Name, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	r.stdout = outR
	r.pipes, childEnds = append(r.pipes, outR), append(childEnds, outW)
	errR, errW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	r.pipes, childEnds = append(r.pipes, errR), append(childEnds, errW)
	cmd.Stdout, cmd.Stderr = outW, errW
	var inW *os.File
	if m.stdin {
		var inR *os.File
		if inR, inW, err = os.Pipe(); err != nil {
			return fail(err)
		}
		r.pipes, childEnds = append(r.pipes, inW), append(childEnds, inR)
		cmd.Stdin = inR
	}
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	for _, f := range childEnds {
		f.Close()
	}
	if inW != nil {
		r.wg.Go(func() {
			// A command that exits without reading its input makes this
			// fail with EPIPE, which is no concern of ours.
			_, _ = io.WriteString(inW, prompt)
			inW.Close()
		})
	}
	r.wg.Go(func() {
		_, _ = io.Copy(&r.stderr, errR)
		close(r.stderrDone)
	})
	r.wg.Go(r.wait)
	return r, nil
}

// wait reaps the command and kills what is left of its group. If a child
// that escaped the group still holds the output pipes pipeGrace later, and
// the reader has not finished, it cuts them so the reader is not held.
func (r *run) wait() {
	r.waitErr = r.cmd.Wait()
	r.ctxErr = r.ctx.Err()
	_ = killGroup(r.cmd.Process.Pid)
	close(r.exited)
	t := time.NewTimer(pipeGrace)
	defer t.Stop()
	select {
	case <-t.C:
		r.closePipes()
	case <-r.done:
	}
}

// killGroup kills every process of the group led by pid.
func killGroup(pid int) error {
	err := syscall.Kill(-pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// kill stops the command and its group now.
func (r *run) kill() { r.cancel() }

func (r *run) closePipes() {
	r.pipesOnce.Do(func() {
		for _, f := range r.pipes {
			f.Close()
		}
	})
}

// finish waits for the command to exit (it is killed if the context ends),
// lets the standard error copy reach its end (for at most pipeGrace),
// releases the pipes and waits for every goroutine of the run. It is safe
// to call more than once and from another goroutine than the reader.
func (r *run) finish() {
	<-r.exited
	r.doneOnce.Do(func() { close(r.done) })
	t := time.NewTimer(pipeGrace)
	select {
	case <-r.stderrDone:
	case <-t.C:
	}
	t.Stop()
	r.closePipes()
	r.wg.Wait()
	r.cancel()
}

// failure classifies how the command ended, after finish: nil for a zero
// exit.
func (r *run) failure() *providers.Error {
	if r.ctxErr != nil {
		e := providers.Classify(r.ctxErr)
		if e.Class == messages.ErrorClass_timeout {
			e.Message = fmt.Sprintf("%s gave no answer within its deadline", r.name)
		}
		return e
	}
	if r.waitErr == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(r.waitErr, &ee) {
		return &providers.Error{Class: messages.ErrorClass_server_error, Message: r.describe(ee.ProcessState.String()), Err: r.waitErr}
	}
	return &providers.Error{Class: messages.ErrorClass_server_error, Message: r.describe(r.waitErr.Error()), Err: r.waitErr}
}

// empty is the failure of a zero exit with no output.
func (r *run) empty() *providers.Error {
	return providers.Errorf(messages.ErrorClass_malformed, "%s", r.describe("no output"))
}

// describe names the command's end and adds the tail of its standard error.
func (r *run) describe(what string) string {
	msg := fmt.Sprintf("%s: %s", r.name, what)
	if s := strings.TrimSpace(r.stderr.String()); s != "" {
		msg += ": " + s
	}
	return msg
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex // guards buf; written by the stderr goroutine
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.ToValidUTF8(t.buf, []byte("\uFFFD")))
}
