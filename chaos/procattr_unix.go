//go:build unix && !linux

package chaos

import "syscall"

// procAttr puts a child in its own process group, so the Ctrl-C a terminal
// sends to the runner's group does not reach it: the runner clears faults
// and stops its children itself.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
