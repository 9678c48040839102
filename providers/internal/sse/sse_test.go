package sse

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func read(input string, maxLine int) ([]Event, error) {
	r := NewReader(strings.NewReader(input), maxLine)
	var out []Event
	for {
		ev, err := r.Next()
		if err != nil {
			return out, err
		}
		out = append(out, Event{Type: ev.Type, Data: append([]byte(nil), ev.Data...)})
	}
}

func TestReader(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    []Event
		wantErr error
	}{
		{"data events", "data: a\n\ndata: b\n\n", []Event{{Data: []byte("a")}, {Data: []byte("b")}}, io.EOF},
		{"crlf, typed, multi-line", "event: delta\r\ndata: one\r\ndata:two\r\n\r\n", []Event{{Type: "delta", Data: []byte("one\ntwo")}}, io.EOF},
		{"comments, id, retry and empty events skipped", ": ping\n\nid: 3\nretry: 10\n\nevent: x\n\ndata: a\n\n", []Event{{Data: []byte("a")}}, io.EOF},
		{"type does not leak to the next event", "event: x\n\ndata: a\n\n", []Event{{Data: []byte("a")}}, io.EOF},
		{"last event without its blank line", "data: a\n\ndata: [DONE]\n", []Event{{Data: []byte("a")}, {Data: []byte("[DONE]")}}, io.EOF},
		{"last line cut", "data: a\n\ndata: {\"x\":", []Event{{Data: []byte("a")}}, io.ErrUnexpectedEOF},
		{"empty", "", nil, io.EOF},
		{"line too long", "data: " + strings.Repeat("x", 100) + "\n\n", nil, ErrLineTooLong},
		{"long line within the limit", "data: " + strings.Repeat("y", 50) + "\n\n", []Event{{Data: []byte(strings.Repeat("y", 50))}}, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := read(tt.input, 64)
			assert.Equal(t, tt.want, got)
			assert.True(t, errors.Is(err, tt.wantErr), "got error %v, want %v", err, tt.wantErr)
		})
	}
}

// TestLongLinesAcrossBuffers reads lines longer than the bufio buffer.
func TestLongLinesAcrossBuffers(t *testing.T) {
	long := strings.Repeat("z", 100<<10)
	got, err := read("data: "+long+"\n\ndata: b\n\n", 1<<20)
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, []Event{{Data: []byte(long)}, {Data: []byte("b")}}, got)
}
