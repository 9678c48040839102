package main

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// openPTY returns both ends of a new pseudo-terminal.
func openPTY(t *testing.T) (ptmx, pts *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	require.NoError(t, unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0), "unlock the pty")
	n, err := unix.IoctlGetUint32(int(ptmx.Fd()), unix.TIOCGPTN)
	require.NoError(t, err, "pty number")
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { pts.Close() })
	return ptmx, pts
}

// On a terminal the console log is coloured, unless NO_COLOR is set.
func TestConsoleLogIsColouredOnATerminal(t *testing.T) {
	for _, tt := range []struct {
		name    string
		noColor string
		want    bool
	}{{"terminal", "", true}, {"terminal with NO_COLOR", "1", false}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("NO_COLOR", tt.noColor)
			ptmx, pts := openPTY(t)
			log, err := newLogger("info", "console", pts)
			require.NoError(t, err)
			log.Info().Msg("hive node serving")

			got := make(chan string, 1)
			go func() {
				buf := make([]byte, 4096)
				n, _ := ptmx.Read(buf)
				got <- string(buf[:n])
			}()
			select {
			case line := <-got:
				assert.Contains(t, line, "hive node serving")
				assert.Equal(t, tt.want, containsEscape(line), "escape codes in %q", line)
			case <-time.After(10 * time.Second):
				t.Fatal("nothing read from the terminal within 10 s")
			}
		})
	}
}

func containsEscape(s string) bool {
	for _, r := range s {
		if r == 0x1b {
			return true
		}
	}
	return false
}
