package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// startTimeout bounds how long a process may take to say it is ready.
const startTimeout = 60 * time.Second

// proc is a process the runner started: a hive node or a nats-server. Its
// stderr (and stdout) go to a log file; a line recognised by ready says it
// is serving.
type proc struct {
	name    string
	node    string // the hive node's name; "" for a nats-server
	path    string
	args    []string
	logPath string
	// ready recognises the line that says the process is ready and returns
	// what the runner needs from it (a node's NATS URL).
	ready func(line string) (string, bool)
	// exited is called, from the process's waiter goroutine, when the
	// process ends without the runner stopping it.
	exited func(p *proc, err error)
	wg     *sync.WaitGroup // the runner's: waiters are counted in it

	mu       sync.Mutex // guards cmd, done, stopping, tail
	cmd      *exec.Cmd
	done     chan struct{} // closed when the running process has exited
	stopping bool
	tail     []string // the last lines of its log, for errors
}

// start runs the process and waits until it is ready, or ctx ends (then
// it kills it); it returns what ready extracted.
func (p *proc) start(ctx context.Context) (string, error) {
	if err := os.MkdirAll(filepath.Dir(p.logPath), 0o755); err != nil {
		return "", err
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", err
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.SysProcAttr = procAttr()
	cmd.Stdout = logf
	stderr, err := cmd.StderrPipe()
	if err != nil {
		_ = logf.Close()
		return "", err
	}
	fmt.Fprintf(logf, "# chaos: %s %s\n", p.path, strings.Join(p.args, " "))
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return "", fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done, p.stopping, p.tail = cmd, done, false, nil
	p.mu.Unlock()

	readyCh := make(chan string, 1)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		isReady := false
		for sc.Scan() {
			line := sc.Text()
			_, _ = logf.WriteString(line + "\n")
			p.remember(line)
			if !isReady {
				if v, ok := p.ready(line); ok {
					isReady = true
					readyCh <- v
				}
			}
		}
		err := cmd.Wait() // after the last read of the pipe, as os/exec requires
		_ = logf.Close()
		p.mu.Lock()
		stopping := p.stopping
		p.mu.Unlock()
		close(done)
		if !stopping && p.exited != nil {
			p.exited(p, err)
		}
	}()
	select {
	case v := <-readyCh:
		return v, nil
	case <-done:
		return "", fmt.Errorf("%s exited before it was ready; the end of %s:\n%s", p.name, p.logPath, p.lastLines())
	case <-time.After(startTimeout):
		_ = p.kill()
		return "", fmt.Errorf("%s was not ready within %s; the end of %s:\n%s", p.name, startTimeout, p.logPath, p.lastLines())
	case <-ctx.Done():
		_ = p.kill()
		return "", fmt.Errorf("%s: %w", p.name, ctx.Err())
	}
}

func (p *proc) remember(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tail = append(p.tail, line)
	if len(p.tail) > 15 {
		p.tail = p.tail[len(p.tail)-15:]
	}
}

func (p *proc) lastLines() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "  " + strings.Join(p.tail, "\n  ")
}

// running reports whether the process is up.
func (p *proc) running() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL, as kill -9 does, and waits for the process to end.
// The runner asked for it, so exited is not called.
func (p *proc) kill() error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.stopping = true
	p.mu.Unlock()
	if cmd == nil || !p.running() {
		return fmt.Errorf("%s is not running", p.name)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	<-done
	return nil
}

// stop sends SIGTERM, and SIGKILL when the process is still there after
// grace; it waits for the process to end.
func (p *proc) stop(grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.stopping = true
	p.mu.Unlock()
	if cmd == nil || !p.running() {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

// findBinary returns the path of a program: explicit when given, else
// bin/<name>, else <name> on PATH. Missing, it says which make target
// builds it.
func findBinary(explicit, name, flag, target string) (string, error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", fmt.Errorf("%s %s: %w", flag, explicit, err)
		}
		return filepath.Abs(explicit)
	}
	local := filepath.Join("bin", name)
	if st, err := os.Stat(local); err == nil && !st.IsDir() {
		return filepath.Abs(local)
	}
	if path, err := exec.LookPath(name); err == nil {
		return path, nil
	}
	return "", fmt.Errorf("%s not found in bin/ or on PATH: run `make %s` (or pass %s)", name, target, flag)
}
