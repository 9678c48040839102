// Package sse reads a Server-Sent Events stream (the WHATWG event stream
// format) as the OpenAI and Anthropic streaming APIs send it. It is internal
// to providers: the backends share it, nothing else needs it.
//
// A Reader is used by one goroutine.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// ErrLineTooLong is returned for a line longer than the Reader's limit.
var ErrLineTooLong = errors.New("sse: line too long")

// Event is one dispatched event: its "event:" field (empty for the default
// type) and its data lines joined with "\n".
type Event struct {
	Type string
	Data []byte
}

// Reader reads events from an event stream.
type Reader struct {
	br      *bufio.Reader
	maxLine int
	line    []byte
}

// NewReader returns a Reader over r that refuses lines longer than maxLine
// bytes.
func NewReader(r io.Reader, maxLine int) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 16<<10), maxLine: maxLine}
}

// Next returns the next event with data. Comments (lines starting with
// ':', the keep-alives), id and retry fields, and events without data are
// skipped, as the format says. At a clean end of r it returns io.EOF; an
// event whose lines were complete but whose closing blank line never came is
// still returned first, since servers that close the connection right after
// their last line are common. A last line cut before its line feed is not an
// event: Next returns io.ErrUnexpectedEOF. Any other read error is returned
// as is.
func (r *Reader) Next() (Event, error) {
	var ev Event
	var data bytes.Buffer
	hasData := false
	for {
		line, err := r.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if len(line) > 0 {
					return Event{}, io.ErrUnexpectedEOF
				}
				if hasData {
					ev.Data = data.Bytes()
					return ev, nil
				}
			}
			return Event{}, err
		}
		if len(line) == 0 {
			if hasData {
				ev.Data = data.Bytes()
				return ev, nil
			}
			ev = Event{}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.Type = string(value)
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.Write(value)
			hasData = true
		}
	}
}

// readLine returns one line without its "\n" or "\r\n". At the end of the
// input it returns what is left (a line without its line feed) and io.EOF.
func (r *Reader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.line = append(r.line, chunk...)
		if len(r.line) > r.maxLine {
			return nil, ErrLineTooLong
		}
		switch {
		case err == nil:
			line := r.line[:len(r.line)-1]
			return bytes.TrimSuffix(line, []byte("\r")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return r.line, err
		}
	}
}
