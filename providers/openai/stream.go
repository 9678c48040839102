package openai

import (
	"context"
	"encoding/json"
	"io"
	"strings"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/providers/internal/httpapi"
)

// Stream asks for a streamed answer (stream: true, with usage). Errors
// before the first byte of the stream (refused, 429, 401 ...) are returned
// here, classified as Complete's; a 2xx answer that is not an event stream
// is malformed unless it holds an error object.
func (m *Model) Stream(ctx context.Context, req *messages.InferRequest) (providers.Stream, error) {
	hs, perr := m.api.Stream(ctx, m.body(req, true), "the stream ended without [DONE] or a finish_reason")
	if perr != nil {
		return nil, perr
	}
	return &stream{Stream: hs}, nil
}

// stream parses the chat completion chunks; the body, its end and Close
// are httpapi.Stream's.
type stream struct {
	*httpapi.Stream

	// Owned by Recv.
	finished bool            // a finish_reason was seen: the answer is complete
	usage    bool            // the usage chunk was seen
	refusal  strings.Builder // refusal deltas, reported at the finish
}

type chunkJSON struct {
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Content string `json:"content"`
			Refusal string `json:"refusal"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usageJSON      `json:"usage"`
	Error json.RawMessage `json:"error"`
}

func (s *stream) Recv() (providers.Chunk, error) { return s.Stream.Recv(s.next) }

// next reads events until one carries text or usage, or the stream ends.
func (s *stream) next() (providers.Chunk, error) {
	for {
		if s.finished && s.usage {
			return providers.Chunk{}, io.EOF
		}
		ev, err := s.Event()
		if err != nil {
			if s.finished {
				// Complete once a finish_reason was seen, whatever the
				// way the body ended.
				return providers.Chunk{}, io.EOF
			}
			return providers.Chunk{}, err
		}
		switch ev.Type {
		case "", "message":
		case "error":
			return providers.Chunk{}, s.failed(ev.Data)
		default:
			continue // an event type this API does not define
		}
		if string(ev.Data) == "[DONE]" {
			return providers.Chunk{}, io.EOF
		}
		var cj chunkJSON
		if err := json.Unmarshal(ev.Data, &cj); err != nil {
			if s.finished {
				return providers.Chunk{}, io.EOF
			}
			return providers.Chunk{}, httpapi.Unparsable(ev.Type, err)
		}
		if len(cj.Error) > 0 && string(cj.Error) != "null" {
			return providers.Chunk{}, s.failed(ev.Data)
		}
		var c providers.Chunk
		for _, ch := range cj.Choices {
			if ch.Index != 0 {
				continue
			}
			c.Delta += ch.Delta.Content
			s.refusal.WriteString(ch.Delta.Refusal)
			if ch.FinishReason != nil && *ch.FinishReason != "" {
				if e := refused(*ch.FinishReason, s.refusal.String()); e != nil {
					return providers.Chunk{}, e
				}
				s.finished = true
			}
		}
		if cj.Usage != nil {
			c.Usage = cj.Usage.usage()
			s.usage = true
		}
		if c.Delta != "" || c.Usage != nil {
			return c, nil
		}
	}
}

// failed classifies an error event; one without a recognisable error
// object is malformed. After a finish_reason the answer is already
// complete, and stays so.
func (s *stream) failed(data []byte) error {
	if s.finished {
		return io.EOF
	}
	return s.ErrorEvent(data)
}
