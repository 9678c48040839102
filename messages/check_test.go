package messages

import "testing"

// TestCheckRequestPrefixAndTools: only the last message, of role
// assistant, may be a prefix; tools and response_format, when set, are a
// JSON array and object.
func TestCheckRequestPrefixAndTools(t *testing.T) {
	base := func() *InferRequest {
		return &InferRequest{Model: "m", Messages: []*ChatMessage{{Role: "user", Content: "hi"}, {Role: "assistant", Content: "It was"}}}
	}
	tests := []struct {
		name string
		edit func(r *InferRequest)
		code string // "" when the request passes
	}{
		{"a prefill", func(r *InferRequest) { r.Messages[1].Prefix = true }, ""},
		{"prefix on a user turn", func(r *InferRequest) { r.Messages[0].Prefix = true }, "invalid_prefix"},
		{"prefix not last", func(r *InferRequest) {
			r.Messages[1].Prefix = true
			r.Messages = append(r.Messages, &ChatMessage{Role: "user", Content: "go on"})
		}, "invalid_prefix"},
		{"tools", func(r *InferRequest) { r.Tools = ` [{"type":"function","function":{"name":"f"}}]` }, ""},
		{"tools an object", func(r *InferRequest) { r.Tools = `{"type":"function"}` }, "invalid_tools"},
		{"tools not JSON", func(r *InferRequest) { r.Tools = `[{"type":` }, "invalid_tools"},
		{"response format", func(r *InferRequest) { r.ResponseFormat = `{"type":"json_object"}` }, ""},
		{"response format an array", func(r *InferRequest) { r.ResponseFormat = `[]` }, "invalid_response_format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base()
			tt.edit(r)
			p := CheckRequest(r)
			switch {
			case tt.code == "" && p != nil:
				t.Fatalf("got %v, want no problem", p)
			case tt.code != "" && (p == nil || p.Code != tt.code):
				t.Fatalf("got %v, want code %s", p, tt.code)
			}
		})
	}
}
