// Command llm uses the llm agent kind from Go: it builds an agent over an
// OpenAI-compatible model (Ollama on this machine by default) with llm.New,
// registers it in an Engine over a memory store and invokes it, printing a
// structured summary of its arguments and what the call consumed.
//
//	ollama pull llama3.2
//	go run ./examples/llm "Go is an open source programming language that makes it simple to build secure, scalable systems."
//	OPENAI_BASE_URL=https://api.openai.com/v1 OPENAI_API_KEY=sk-... OPENAI_MODEL=gpt-4o-mini go run ./examples/llm "..."
//
// The same agent configured in YAML and served over MCP, with an Anthropic
// agent and two that use the client's own model: mcptower.yaml in this
// directory (mcptower serve --config examples/llm/mcptower.yaml).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"

	"mcptower/agents"
	"mcptower/agents/llm"
	"mcptower/contextstore"
	"mcptower/contextstore/memory"
	"mcptower/schemas"
)

// Summary is the agent's answer; its JSON Schema is the output schema.
type Summary struct {
	Summary  string   `json:"summary" jsonschema_description:"The text in at most three sentences"`
	Keywords []string `json:"keywords" jsonschema_description:"Up to five keywords"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "llm:", err)
		os.Exit(1)
	}
}

// NewSummarizer builds the agent: base URL, key and model come from
// OPENAI_BASE_URL, OPENAI_API_KEY and OPENAI_MODEL (default: llama3.2 on
// a local Ollama).
func NewSummarizer(getenv func(string) string) (*llm.Agent, error) {
	base := getenv("OPENAI_BASE_URL")
	if base == "" {
		base = "http://127.0.0.1:11434/v1"
	}
	model := getenv("OPENAI_MODEL")
	if model == "" {
		model = "llama3.2"
	}
	out, err := schemas.For[Summary]()
	if err != nil {
		return nil, err
	}
	return llm.New(agents.Spec{Name: "summarize", Description: "Summarizes a text."}, &llm.Options{
		BaseURL: base,
		APIKey:  getenv("OPENAI_API_KEY"),
		Model:   model,
		PromptOptions: llm.PromptOptions{
			System:       "You summarize texts in plain words.",
			Prompt:       "Summarize this text:\n\n{{.Input.text}}",
			InputSchema:  json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`),
			OutputSchema: out.JSON(),
			MaxTokens:    400,
		},
		Prices: map[string]llm.Price{"gpt-4o-mini": {Input: 0.15, Output: 0.60}},
	})
}

func run(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	text := strings.TrimSpace(strings.Join(args, " "))
	if text == "" {
		return errors.New(`usage: llm "text to summarize"`)
	}
	agent, err := NewSummarizer(getenv)
	if err != nil {
		return err
	}
	reg := agents.NewRegistry()
	if err := reg.Add(agent); err != nil {
		return err
	}
	store := memory.New(contextstore.Options{})
	defer store.Close()
	engine := &agents.Engine{Registry: reg, Store: store, Logger: slog.New(slog.DiscardHandler)}

	in, _ := json.Marshal(map[string]string{"text": text})
	resp, err := engine.Invoke(ctx, agents.Request{Agent: "summarize", Args: in})
	if err != nil {
		return err
	}
	if resp.Result.IsError {
		return errors.New(resp.Result.Content[0].Text)
	}
	var s Summary
	if err := json.Unmarshal(resp.Result.Output, &s); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\nkeywords: %s\n", s.Summary, strings.Join(s.Keywords, ", "))
	if u := resp.Result.Usage; u != nil {
		fmt.Fprintf(stdout, "tokens: %d in, %d out; cost: $%.6f\n", u.InputTokens, u.OutputTokens, u.CostUSD)
	}
	return nil
}
