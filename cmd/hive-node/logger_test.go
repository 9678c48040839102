package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A console log written to anything but a terminal has no colour codes.
func TestConsoleLogHasNoColourOffATerminal(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger("info", "console", &buf)
	require.NoError(t, err)
	log.Warn().Str("model", "gpt-5").Msg("breaker opened")
	assert.NotContains(t, buf.String(), "\x1b[", "escape codes in a log written to a buffer: %q", buf.String())
	assert.Contains(t, buf.String(), "WRN breaker opened model=gpt-5")

	file, err := os.Create(filepath.Join(t.TempDir(), "node.log"))
	require.NoError(t, err)
	defer file.Close()
	log, err = newLogger("info", "console", file)
	require.NoError(t, err)
	log.Info().Msg("hive node serving")
	b, err := os.ReadFile(file.Name())
	require.NoError(t, err)
	assert.NotContains(t, string(b), "\x1b[", "escape codes in a log file: %q", b)

	buf.Reset()
	log, err = newLogger("info", "json", &buf)
	require.NoError(t, err)
	log.Info().Msg("hive node serving")
	assert.True(t, strings.HasPrefix(buf.String(), `{"level":"info"`), "json log line: %q", buf.String())
}
