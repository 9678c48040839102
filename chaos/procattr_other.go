//go:build !unix

package chaos

import "syscall"

// procAttr has nothing to add where there are no process groups.
func procAttr() *syscall.SysProcAttr { return nil }
