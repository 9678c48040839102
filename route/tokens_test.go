package route

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tiktoken-go/tokenizer"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
)

// sample is one text of the estimate's corpus, with its kind.
type sample struct {
	kind, text string
}

// corpus returns the texts the estimate is measured on, cut into pieces of
// about 4 KB: English prose (testdata/tokens/prose.md, a copy of the
// README's first sections and docs/policy.md taken when the estimate was
// made, so that the figures do not move whenever the README does), this
// repository's Go, YAML and protobuf as they are, and the hand-written
// sections of testdata/tokens/languages.txt (eight other languages).
func corpus(t testing.TB) []sample {
	t.Helper()
	var out []sample
	files := []struct{ kind, glob string }{
		{"prose", "testdata/tokens/prose.md"},
		{"go", "*.go"}, {"go", "../actors/*.go"},
		{"yaml", "../config/*.yml"}, {"yaml", "../scenarios/*.yml"},
		{"proto", "../messages/hive.proto"},
	}
	for _, f := range files {
		paths, err := filepath.Glob(f.glob)
		if err != nil || len(paths) == 0 {
			t.Fatalf("corpus %s: no files (%v)", f.glob, err)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			for text := string(b); text != ""; {
				n := min(4096, len(text))
				for n < len(text) && text[n]&0xC0 == 0x80 { // not inside a character
					n++
				}
				out = append(out, sample{f.kind, text[:n]})
				text = text[n:]
			}
		}
	}
	b, err := os.ReadFile("testdata/tokens/languages.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range strings.Split(string(b), "\n## ")[1:] {
		lang, text, _ := strings.Cut(sec, "\n")
		out = append(out, sample{lang, text})
	}
	return out
}

// spread is the error of the estimate over some samples: estimate/real - 1.
type spread struct {
	n                   int
	mean, lowest, worst float64 // worst: the highest
	over                int     // samples estimated above the real count
}

func (s *spread) add(e float64) {
	if s.n == 0 {
		s.lowest, s.worst = e, e
	}
	s.n++
	s.mean += (e - s.mean) / float64(s.n)
	s.lowest, s.worst = math.Min(s.lowest, e), math.Max(s.worst, e)
	if e > 0 {
		s.over++
	}
}

func (s spread) String() string {
	return fmt.Sprintf("| %d | %+.0f %% | %+.0f %% | %+.0f %% | %d |", s.n, 100*s.mean, 100*s.lowest, 100*s.worst, s.over)
}

// TestEstimateError measures EstimateText against two real tokenizers,
// tiktoken's o200k_base (GPT-4o, GPT-4.1, GPT-5, o-series) and cl100k_base
// (GPT-4, GPT-3.5), on the corpus: the estimate must stay a lower bound
// for nearly every sample, and never fall far below. `go test -v -run
// TestEstimateError ./route` prints the table docs/context-windows.md
// quotes.
func TestEstimateError(t *testing.T) {
	samples := corpus(t)
	for _, enc := range []tokenizer.Encoding{tokenizer.O200kBase, tokenizer.Cl100kBase} {
		codec, err := tokenizer.Get(enc)
		if err != nil {
			t.Fatal(err)
		}
		by := map[string]*spread{}
		all := &spread{}
		for _, s := range samples {
			ids, _, err := codec.Encode(s.text)
			if err != nil {
				t.Fatal(err)
			}
			e := float64(EstimateText(s.text))/float64(len(ids)) - 1
			if by[s.kind] == nil {
				by[s.kind] = &spread{}
			}
			by[s.kind].add(e)
			all.add(e)
			// The bounds: a skip the estimate causes must be right (it is at
			// most 10 % above the real count), and a long prompt must still
			// be caught (at most 50 % below).
			if e > 0.10 || e < -0.50 {
				t.Errorf("%s, a %s sample of %d bytes: estimate %d, real %d (%+.0f %%), want within -50 %% .. +10 %%",
					enc, s.kind, len(s.text), EstimateText(s.text), len(ids), 100*e)
			}
		}
		kinds := make([]string, 0, len(by))
		for k := range by {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		t.Logf("%s\n| text | samples | mean | lowest | highest | above the real count |", enc)
		for _, k := range kinds {
			t.Logf("| %s %s", k, by[k])
		}
		t.Logf("| all %s", all)
		if share := float64(all.over) / float64(all.n); share > 0.05 {
			t.Errorf("%s: %d of %d samples estimated above the real count (%.0f %%), want at most 5 %%: the estimate is meant as a lower bound",
				enc, all.over, all.n, 100*share)
		}
	}
}

func TestEstimateTokens(t *testing.T) {
	for _, c := range []struct {
		name string
		msgs []*messages.ChatMessage
		want int
	}{
		{"no message: the reply's priming", nil, 3},
		{"an empty message", []*messages.ChatMessage{{Role: "user"}}, 3 + 4},
		{"one word", []*messages.ChatMessage{{Role: "user", Content: "hello"}}, 3 + 4 + 1},
		{"two messages add up", []*messages.ChatMessage{{Role: "system", Content: "hello"}, {Role: "user", Content: "hello"}}, 3 + 2*(4+1)},
		// 20 characters of two bytes weigh 20 x 64/256: continuation bytes weigh nothing.
		{"a character counts once", []*messages.ChatMessage{{Role: "user", Content: strings.Repeat("é", 20)}}, 3 + 4 + 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := EstimateTokens(c.msgs); got != c.want {
				t.Errorf("got %d, want %d", got, c.want)
			}
		})
	}
}

// prompt4K is a 4 KB prompt: the README's first 4 KB as
// testdata/tokens/prose.md has them, English prose and a console box.
func prompt4K(b *testing.B) []*messages.ChatMessage {
	text, err := os.ReadFile("testdata/tokens/prose.md")
	if err != nil {
		b.Fatal(err)
	}
	return []*messages.ChatMessage{{Role: "user", Content: string(text[:4096])}}
}

// BenchmarkEstimate is the pre-call estimate's cost per request, for a
// 4 KB prompt (the goal: under 5 µs): plain English prose (every 8-byte
// block of ASCII with no repeated byte takes the fast path), the README's
// first 4 KB (a console box of repeated 3-byte characters), and Japanese
// (no fast path at all).
func BenchmarkEstimate(b *testing.B) {
	ja, err := os.ReadFile("testdata/tokens/languages.txt")
	if err != nil {
		b.Fatal(err)
	}
	_, jaText, _ := strings.Cut(string(ja), "\n## ja\n")
	jaText, _, _ = strings.Cut(jaText, "\n## ")
	for _, c := range []struct{ name, text string }{
		{"prose", strings.Repeat("The router skips a model whose window cannot hold the prompt, and sends it to one that can. ", 45)[:4096]},
		{"console", prompt4K(b)[0].GetContent()},
		{"japanese", strings.Repeat(jaText, 4)[:4096]},
	} {
		b.Run(c.name, func(b *testing.B) {
			msgs := []*messages.ChatMessage{{Role: "user", Content: c.text}}
			b.SetBytes(int64(len(c.text)))
			for b.Loop() {
				EstimateTokens(msgs)
			}
		})
	}
}

// BenchmarkTiktoken is what a real tokenizer (o200k_base) costs for the
// same prompt: the reason the pre-call check estimates.
func BenchmarkTiktoken(b *testing.B) {
	codec, err := tokenizer.Get(tokenizer.O200kBase)
	if err != nil {
		b.Fatal(err)
	}
	text := prompt4K(b)[0].GetContent()
	b.SetBytes(4096)
	for b.Loop() {
		codec.Encode(text)
	}
}

// BenchmarkPreCallCheck is a request's whole pre-call check with a 4 KB
// prompt: the estimate, then a Started step that skips the first member
// (its window too small) and launches the second, and the result.
func BenchmarkPreCallCheck(b *testing.B) {
	msgs := prompt4K(b)
	small := NewMember("small", 1, resilience.RetryConfig{MaxRetries: -1})
	small.ContextWindow = 512
	large := NewMember("large", 1, resilience.RetryConfig{MaxRetries: -1})
	large.ContextWindow = 128_000
	g, err := NewGroup(GroupConfig{Node: "n1", Members: []*Member{small, large}, Random: func() float64 { return 0.5 }})
	if err != nil {
		b.Fatal(err)
	}
	now := t0
	var id uint64
	for b.Loop() {
		id++
		r := NewRequest(id, g)
		fx := r.Step(now, Started{Received: now, Prompt: EstimateTokens(msgs), MaxTokens: 256})
		if len(fx) != 2 || fx[1].Model != "large" {
			b.Fatalf("got %v, want the deadline armed and large launched", fx)
		}
		r.Step(now, Result{Attempt: fx[1].Attempt, Content: "ok"})
	}
}
