package anthropic

import (
	"context"
	"encoding/json"
	"io"
	"strings"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/providers/internal/httpapi"
)

// Stream asks for a streamed answer. Errors before the event stream starts
// (refused, 429, 529, 401 ...) are returned here, classified as Complete's;
// a 2xx answer that is not an event stream is malformed unless it holds an
// error object.
func (m *Model) Stream(ctx context.Context, req *messages.InferRequest) (providers.Stream, error) {
	hs, perr := m.api.Stream(ctx, m.body(req, true), "the stream ended without message_stop or a stop_reason")
	if perr != nil {
		return nil, perr
	}
	return &stream{Stream: hs}, nil
}

// stream parses the Messages API's events; the body, its end and Close are
// httpapi.Stream's.
type stream struct {
	*httpapi.Stream

	// Owned by Recv.
	prompt   int32           // input tokens from message_start
	text     strings.Builder // what was said, for a refusal's reason (bounded)
	finished bool            // a stop_reason was seen: the answer is complete
}

// event is the union of the Messages API's stream events.
type event struct {
	Type    string `json:"type"`
	Message struct {
		Usage *usageJSON `json:"usage"`
	} `json:"message"`
	Delta struct {
		Type       string `json:"type"`
		Text       string `json:"text"`
		StopReason string `json:"stop_reason"`
	} `json:"delta"`
	Usage *usageJSON `json:"usage"`
}

func (s *stream) Recv() (providers.Chunk, error) { return s.Stream.Recv(s.next) }

// next reads events until one carries text or the final usage, or the
// stream ends. (Once a stop_reason was seen it returns io.EOF before
// reading again.)
func (s *stream) next() (providers.Chunk, error) {
	for {
		if s.finished {
			return providers.Chunk{}, io.EOF
		}
		ev, err := s.Event()
		if err != nil {
			return providers.Chunk{}, err
		}
		var e event
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			return providers.Chunk{}, httpapi.Unparsable(ev.Type, err)
		}
		if e.Type == "" {
			e.Type = ev.Type
		}
		switch e.Type {
		case "message_start":
			if u := e.Message.Usage; u != nil {
				s.prompt = u.prompt()
			}
		case "content_block_delta":
			if e.Delta.Type == "text_delta" && e.Delta.Text != "" {
				if s.text.Len() < 1024 {
					s.text.WriteString(e.Delta.Text)
				}
				return providers.Chunk{Delta: e.Delta.Text}, nil
			}
		case "message_delta":
			if e.Delta.StopReason == "refusal" {
				return providers.Chunk{}, refusal(s.text.String())
			}
			var c providers.Chunk
			if u := e.Usage; u != nil {
				prompt := s.prompt
				if p := u.prompt(); p > 0 {
					prompt = p // newer API versions repeat the input counts here
				}
				c.Usage = &messages.Usage{PromptTokens: prompt, CompletionTokens: u.OutputTokens}
			}
			if e.Delta.StopReason != "" {
				s.finished = true
			}
			if c.Usage != nil {
				return c, nil
			}
		case "message_stop":
			return providers.Chunk{}, io.EOF
		case "error":
			return providers.Chunk{}, s.ErrorEvent(ev.Data)
		}
		// ping, content_block_start, content_block_stop, non-text deltas
		// (thinking, tool input) and event types added later are skipped.
	}
}
