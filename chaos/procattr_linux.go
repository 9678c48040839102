package chaos

import "syscall"

// procAttr puts a child in its own process group, so the Ctrl-C a terminal
// sends to the runner's group does not reach it (the runner clears faults
// and stops its children itself), and asks Linux to kill it if the runner
// dies without stopping it. Pdeathsig follows the thread that started the
// child; the runner starts children from goroutines that do not lock their
// thread, so it is best effort, not a guarantee.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
