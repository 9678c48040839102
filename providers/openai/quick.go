package openai

import (
	"github.com/cmmv-hive/resilience/internal/jsonscan"
	"github.com/cmmv-hive/resilience/messages"
)

// quickAnswer reads the usual plain answer in one pass over its bytes,
// without reflection: a valid JSON object whose "choices" holds exactly one
// choice, its fields of the types OpenAI gives them. It was the node's
// largest JSON cost through encoding/json. For anything else, a key spelt
// in another case (encoding/json matches keys without regard to case), a
// key given twice (encoding/json keeps the last), it returns false, and
// Complete decodes with encoding/json, which says what is wrong
// (TestQuickAnswerAgreesWithEncodingJSON, FuzzQuickAnswer).
func quickAnswer(body []byte) (answer, bool) {
	p := jsonscan.New(body)
	var a answer
	choices := 0
	ok := p.Object(func(key string) bool {
		switch key {
		case "choices":
			return p.Array(func() bool {
				choices++
				return choices == 1 && p.Object(func(key string) bool {
					switch key {
					case "message":
						return p.Null() || p.Object(func(key string) bool {
							switch key {
							case "content":
								return p.Str(&a.content)
							case "refusal":
								return p.Str(&a.refusal)
							}
							return p.Skip()
						}, "content", "refusal")
					case "finish_reason":
						return p.Str(&a.finish)
					}
					return p.Skip()
				}, "message", "finish_reason")
			})
		case "usage":
			if p.Null() {
				return true
			}
			a.usage = &messages.Usage{}
			return p.Object(func(key string) bool {
				switch key {
				case "prompt_tokens":
					return p.Int32(&a.usage.PromptTokens)
				case "completion_tokens":
					return p.Int32(&a.usage.CompletionTokens)
				}
				return p.Skip()
			}, "prompt_tokens", "completion_tokens")
		}
		return p.Skip()
	}, "choices", "usage")
	if !ok || !p.End() || choices != 1 {
		return answer{}, false
	}
	return a, true
}
