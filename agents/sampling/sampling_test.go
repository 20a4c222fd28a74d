package sampling_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"mcptower/agents"
	"mcptower/agents/sampling"
	"mcptower/contextstore"
	"mcptower/contextstore/memory"
	"mcptower/internal/errs"
)

// fakeClient answers Sample with the next scripted answer and records the
// requests.
type fakeClient struct {
	agents.NoClient
	mu       sync.Mutex
	answers  []agents.SampleResult
	err      error
	requests []*agents.SampleRequest
}

func (c *fakeClient) Sample(_ context.Context, req *agents.SampleRequest) (*agents.SampleResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = append(c.requests, req)
	if c.err != nil {
		return nil, c.err
	}
	if len(c.answers) == 0 {
		return nil, errors.New("no answer scripted")
	}
	a := c.answers[0]
	c.answers = c.answers[1:]
	return &a, nil
}

func answer(text string) agents.SampleResult {
	return agents.SampleResult{Role: "assistant", Content: agents.Text(text), Model: "client-model"}
}

func newEngine(t *testing.T, defs ...agents.Definition) (*agents.Engine, contextstore.Store) {
	t.Helper()
	store := memory.New(contextstore.Options{})
	t.Cleanup(func() { store.Close() })
	reg := agents.NewRegistry()
	for i := range defs {
		built, err := agents.Build(t.Context(), &defs[i])
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range built {
			if err := reg.Add(a); err != nil {
				t.Fatal(err)
			}
		}
	}
	return &agents.Engine{Registry: reg, Store: store, Logger: slog.New(slog.DiscardHandler)}, store
}

func def(name, options string) agents.Definition {
	return agents.Definition{Name: name, Kind: sampling.Kind, Options: json.RawMessage(options)}
}

func TestAsk(t *testing.T) {
	engine, _ := newEngine(t, def("ask", `{"system":"You are {{.Agent.Name}}.","max_tokens":200,"temperature":0.3,"model_hints":["claude-sonnet","gpt-4o"]}`))
	c := &fakeClient{answers: []agents.SampleResult{answer("Paris.")}}
	resp, err := engine.Invoke(t.Context(), agents.Request{Agent: "ask", Args: json.RawMessage(`{"prompt":"Capital of France?"}`), Client: c})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]agents.Content{agents.Text("Paris.")}, resp.Result.Content); diff != "" || resp.Result.IsError {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	want := &agents.SampleRequest{
		Messages:     []agents.Message{{Role: "user", Content: agents.Text("Capital of France?")}},
		SystemPrompt: "You are ask.",
		MaxTokens:    200,
		Temperature:  0.3,
		ModelHints:   []string{"claude-sonnet", "gpt-4o"},
	}
	if diff := cmp.Diff(want, c.requests[0]); diff != "" {
		t.Errorf("sample request (-want +got):\n%s", diff)
	}
}

// TestStructured: the model is told the schema, its answer validated, and
// one repair round allowed.
func TestStructured(t *testing.T) {
	schema := `{"type":"object","properties":{"answer":{"type":"string"},"confidence":{"type":"number","minimum":0,"maximum":1}},"required":["answer","confidence"]}`
	engine, _ := newEngine(t, def("judge", `{"output_schema":`+schema+`}`))
	c := &fakeClient{answers: []agents.SampleResult{answer(`{"answer":"Paris","confidence":7}`), answer("```json\n{\"answer\":\"Paris\",\"confidence\":0.9}\n```")}}
	resp, err := engine.Invoke(t.Context(), agents.Request{Agent: "judge", Args: json.RawMessage(`{"prompt":"Capital of France?"}`), Client: c})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(resp.Result.Output); got != `{"answer":"Paris","confidence":0.9}` {
		t.Errorf("output = %s", got)
	}
	if len(c.requests) != 2 {
		t.Fatalf("%d sample requests, want 2", len(c.requests))
	}
	if sys := c.requests[0].SystemPrompt; !strings.HasPrefix(sys, "Answer with only a JSON value") || !strings.Contains(sys, schema) {
		t.Errorf("system prompt = %q", sys)
	}
	repair := c.requests[1].Messages
	if len(repair) != 3 || repair[1].Role != "assistant" || repair[2].Content.Text != "Your answer does not match the required JSON Schema: /confidence: 7 is greater than the maximum 1. Answer again with only the corrected JSON value." {
		t.Errorf("repair messages = %+v", repair)
	}
}

// TestInputRequired: a stateless client's input request is returned
// unchanged, so the edge can ask the client and retry the call.
func TestInputRequired(t *testing.T) {
	engine, _ := newEngine(t, def("ask", ``))
	ir := &agents.InputRequired{Inputs: map[string]agents.Input{"in-0": {Sample: &agents.SampleRequest{}}}}
	_, err := engine.Invoke(t.Context(), agents.Request{Agent: "ask", Args: json.RawMessage(`{"prompt":"hi"}`), Client: &fakeClient{err: ir}})
	if got, ok := errors.AsType[*agents.InputRequired](err); !ok || got != ir {
		t.Fatalf("err = %#v, want the client's *InputRequired", err)
	}
}

// TestNoClient: without a client that can sample, a clear error.
func TestNoClient(t *testing.T) {
	engine, store := newEngine(t, def("ask", ``))
	resp, err := engine.Invoke(t.Context(), agents.Request{Agent: "ask", Args: json.RawMessage(`{"prompt":"hi"}`), Session: "s"})
	if err == nil || !strings.Contains(err.Error(), "sampling needs a connected MCP client that supports sampling") || errs.CodeOf(err) != errs.Unavailable {
		t.Fatalf("err = %v", err)
	}
	if resp.Seq == 0 {
		t.Error("the failed call was not recorded")
	}
	if _, err := store.History(t.Context(), "s", contextstore.HistoryQuery{}); err != nil {
		t.Fatal(err)
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct{ options, want string }{
		{`{"model":"x"}`, `agent "a" (kind sampling): unknown field "model"`},
		{`{"prompt":"{{.Input.x"}`, `agent "a" (kind sampling): prompt template, line 1: unclosed action`},
		{`{"temperature":-1}`, `agent "a" (kind sampling): temperature must be between 0 and 2`},
		{`{"model_hints":"claude"}`, `agent "a" (kind sampling): cannot unmarshal string into Go struct field Options.model_hints of type []string`},
	}
	for _, tt := range tests {
		_, err := agents.Build(t.Context(), &agents.Definition{Name: "a", Kind: "sampling", Options: json.RawMessage(tt.options)})
		if err == nil || err.Error() != tt.want {
			t.Errorf("options %s: err = %v\nwant %s", tt.options, err, tt.want)
		}
	}
}
