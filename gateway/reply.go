package gateway

import (
	"net/http"

	"github.com/valyala/fasthttp"

	"strconv"
	"strings"
	"sync"

	"github.com/cmmv-hive/resilience/messages"
)

// Response headers. X-Hive-Attempts lists every call made for the request,
// in the order made, as model=class pairs joined by commas, the class being
// the Hive error class of that call or ok:
//
//	X-Hive-Attempts: gpt-5=server_error,gpt-5=server_error,claude-4-sonnet=ok
//
// A retry of the same model appears as another pair. A candidate the
// router did not call, because its known limits cannot hold the request
// (docs/context-windows.md), appears as model=skipped:<why>, such as
// small=skipped:context_window. An attempt that continued a stream cut
// after its text went out (README, "Streaming") carries how, after a "+":
//
//	X-Hive-Attempts: gpt-5=stream_cut,claude-4-sonnet=ok+prefill
//
// and X-Hive-Continuation says what became of the cut: complete, failed,
// refused_tools, limit, deadline or no_candidate. Config allows only
// letters, digits, "-" and "_" in model names, so the list splits
// unambiguously on ",", "=" and "+".
const (
	headerContinuation = "X-Hive-Continuation"
	headerServedBy     = "X-Hive-Served-By"
	headerAttempts     = "X-Hive-Attempts"
	headerDegradation  = "X-Hive-Degradation"
	headerNode         = "X-Hive-Node"
	headerRetryAfter   = "Retry-After"
	// headerRetryAfterMs is OpenAI's exact form, which its SDKs prefer.
	headerRetryAfterMs = "Retry-After-Ms"
)

// completion is OpenAI's chat.completion object.
type completion struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *usage             `json:"usage"`
}

type completionChoice struct {
	Index        int     `json:"index"`
	Message      message `json:"message"`
	FinishReason string  `json:"finish_reason"`
}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type usage struct {
	PromptTokens     int32 `json:"prompt_tokens"`
	CompletionTokens int32 `json:"completion_tokens"`
	TotalTokens      int32 `json:"total_tokens"`
}

func toUsage(u *messages.Usage) *usage {
	return &usage{
		PromptTokens:     u.GetPromptTokens(),
		CompletionTokens: u.GetCompletionTokens(),
		TotalTokens:      u.GetPromptTokens() + u.GetCompletionTokens(),
	}
}

// errorBody is OpenAI's error object: type carries the Hive error class and
// code the Hive error code, so clients branch on them as on OpenAI's.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Code    string  `json:"code"`
	Param   *string `json:"param"`
}

func toErrorBody(e *messages.Error, param string) errorBody {
	d := errorDetail{Message: e.GetMessage(), Type: e.GetClass().String(), Code: e.GetCode()}
	if param != "" {
		d.Param = &param
	}
	return errorBody{Error: d}
}

// errorStatus is the HTTP status of a failed reply: the class's, or 500
// when a dispatcher reports an error with class ok.
func errorStatus(e *messages.Error) int {
	if s := e.GetClass().Status(); s >= 400 {
		return s
	}
	return http.StatusInternalServerError
}

// writeError answers with status and e in OpenAI's error shape, with
// Retry-After (whole seconds, rounded up) and Retry-After-Ms when e says
// when to retry.
func writeError(w http.ResponseWriter, status int, e *messages.Error) {
	writeErrorParam(w, status, e, "")
}

func writeErrorParam(w http.ResponseWriter, status int, e *messages.Error, param string) {
	if ms := e.GetRetryAfterMs(); ms > 0 {
		w.Header().Set(headerRetryAfter, strconv.Itoa(int((int64(ms)+999)/1000)))
		w.Header().Set(headerRetryAfterMs, strconv.Itoa(int(ms)))
	}
	writeJSON(w, status, toErrorBody(e, param))
}

// attemptsValue is X-Hive-Attempts for attempts; "" when no call was made.
func attemptsValue(attempts []*messages.Attempt) string {
	if len(attempts) == 0 {
		return ""
	}
	var b strings.Builder
	for i, a := range attempts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(a.GetModel())
		b.WriteByte('=')
		if a.GetSkipped() != messages.Attempt_called {
			b.WriteString("skipped:" + a.GetSkipped().String())
			continue
		}
		b.WriteString(a.GetErrorClass().String())
		if c := a.GetContinued(); c != "" {
			b.WriteString("+" + c)
		}
	}
	return b.String()
}

// setAttempts sets X-Hive-Attempts on h, or nothing when no call was made.
func setAttempts(h *fasthttp.ResponseHeader, attempts []*messages.Attempt) {
	if v := attemptsValue(attempts); v != "" {
		h.Set(headerAttempts, v)
	}
}

// setContinuation sets X-Hive-Continuation when a stream was cut.
func setContinuation(h *fasthttp.ResponseHeader, resp *messages.InferResponse) {
	if c := resp.GetContinuation(); c != "" {
		h.Set(headerContinuation, c)
	}
}

// reply writes a non-streamed answer: OpenAI's chat.completion whose model
// is the model that served, or the error, with the X-Hive-* headers.
func (g *gateway) reply(rc *fasthttp.RequestCtx, c *call, resp *messages.InferResponse) int {
	h := &rc.Response.Header
	if resp == nil {
		e := messages.Failure(messages.ErrorClass_server_error, "no_response", "the node returned no response")
		fastError(rc, http.StatusInternalServerError, e, "")
		return http.StatusInternalServerError
	}
	if resp.GetNode() != "" {
		h.Set(headerNode, resp.GetNode())
	}
	if resp.GetServedBy() != "" {
		h.Set(headerServedBy, resp.GetServedBy())
	}
	setAttempts(h, resp.GetAttempts())
	h.Set(headerDegradation, resp.GetDegradation().String())
	if resp.GetReplayed() {
		h.Set(headerIdemp, "true")
	}
	if resp.GetError() != nil {
		status := errorStatus(resp.GetError())
		fastError(rc, status, resp.GetError(), "")
		return status
	}
	buf := bodies.Get().(*[]byte)
	*buf = appendCompletion((*buf)[:0], &completion{
		ID:      completionID(c),
		Object:  "chat.completion",
		Created: now(),
		Model:   resp.GetServedBy(),
		Choices: []completionChoice{{
			Message:      message{Role: "assistant", Content: resp.GetContent()},
			FinishReason: "stop",
		}},
		Usage: toUsage(resp.GetUsage()),
	})
	rc.SetContentType("application/json")
	rc.SetStatusCode(http.StatusOK)
	rc.SetBody(*buf) // copied: the buffer goes back to the pool
	bodies.Put(buf)
	return http.StatusOK
}

// bodies holds the buffers answers are encoded in.
var bodies = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func completionID(c *call) string { return "chatcmpl-" + c.req.GetRequestId() }
