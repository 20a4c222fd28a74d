package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"mcptower/agents"
	"mcptower/contextstore"
	"mcptower/internal/errs"
	"mcptower/schemas"
)

// Defaults of PromptOptions.
const (
	// DefaultPrompt is the user template of an agent with the default input
	// schema.
	DefaultPrompt = "{{.Input.prompt}}"
	// DefaultJSONPrompt is the user template of an agent with its own input
	// schema and no prompt: the arguments as JSON.
	DefaultJSONPrompt = "{{json .Input}}"
	// DefaultContextEntries is how many of the session's newest entries
	// .Context holds.
	DefaultContextEntries = 10
	// DefaultContextMaxBytes bounds the JSON size of .Context.
	DefaultContextMaxBytes = 16 << 10
	// DefaultMaxTokens caps an answer where a cap is required (Anthropic,
	// sampling) and none is configured.
	DefaultMaxTokens = 1024
)

// DefaultInputSchema is the input schema of an agent that declares none:
// one required string, the prompt.
const DefaultInputSchema = `{"type":"object","properties":{"prompt":{"type":"string","description":"What to ask the model"}},"required":["prompt"]}`

// PromptOptions are the options the llm and sampling kinds share: the
// templates, the schemas and the context. In a config file they are keys of
// the agent.
type PromptOptions struct {
	// System is the template of the system prompt; "" sends none.
	System string `json:"system,omitempty"`
	// Prompt is the template of the user message. "" means DefaultPrompt
	// with the default input schema, DefaultJSONPrompt with another. An
	// optional argument that is absent renders as "<no value>": guard it
	// with {{with .Input.name}}...{{end}}.
	Prompt string `json:"prompt,omitempty"`
	// InputSchema is the JSON Schema of the arguments (an object); as a
	// YAML mapping or a string of JSON. Empty means DefaultInputSchema.
	InputSchema json.RawMessage `json:"input_schema,omitempty"`
	// OutputSchema, if set, makes the agent answer with JSON that matches
	// it (structured output); otherwise the answer is text.
	OutputSchema json.RawMessage `json:"output_schema,omitempty"`
	// Temperature is the sampling temperature; nil leaves it to the model.
	Temperature *float64 `json:"temperature,omitempty"`
	// MaxTokens caps the answer; 0 means the provider's default (1024
	// where one is required).
	MaxTokens int `json:"max_tokens,omitempty"`
	// ContextEntries is how many of the session's newest entries .Context
	// holds; nil means DefaultContextEntries, 0 none. The store is read only
	// when a template mentions .Context.
	ContextEntries *int `json:"context_entries,omitempty"`
	// ContextMaxBytes bounds the JSON size of .Context: the oldest entries
	// are left out until the rest fit. 0 means DefaultContextMaxBytes.
	ContextMaxBytes int `json:"context_max_bytes,omitempty"`
}

// TemplateData is what the templates see.
type TemplateData struct {
	// Input are the call's arguments, decoded (objects are
	// map[string]any, numbers json.Number).
	Input map[string]any
	// Context are the session's newest entries, oldest first.
	Context []ContextEntry
	// Agent describes the agent.
	Agent AgentInfo
}

// ContextEntry is one entry of the session's context, as templates see it.
type ContextEntry struct {
	Seq   int64
	Time  time.Time
	Role  string // user, agent, tool, system
	Agent string // name@version that produced it, if any
	// Content is the entry's content, decoded; a call recorded by the
	// engine has input, output (or content), usage.
	Content any
	// JSON is the content's JSON text.
	JSON string
}

// AgentInfo describes the agent to its templates.
type AgentInfo struct {
	Name, Version, Title, Description string
	Tags                              []string
	Metadata                          map[string]string
}

// Turn is one message of a conversation with a model.
type Turn struct {
	// Role is "user" or "assistant".
	Role string
	Text string
}

// Prompt is an agent's compiled prompt: its templates (parsed and checked
// once, when the agent is built), its schemas and its context settings.
type Prompt struct {
	spec           *agents.Spec
	system, user   *template.Template
	contextEntries int
	contextBytes   int
	needsContext   bool
	output         *schemas.Schema
}

// funcs are the functions templates may call besides text/template's.
var funcs = template.FuncMap{
	// json renders a value as compact JSON.
	"json": func(v any) (string, error) {
		data, err := json.Marshal(v)
		return string(data), err
	},
}

// NewPrompt compiles o for the agent described by spec and sets spec.Input
// and spec.Output from the schemas. spec.Name and spec.Kind name the agent
// in errors; a template error also gives the template and its line. The
// spec is kept: templates see its version and metadata as they are when the
// agent runs.
func NewPrompt(spec *agents.Spec, o *PromptOptions) (*Prompt, error) {
	if o == nil {
		o = &PromptOptions{}
	}
	p := &Prompt{spec: spec, contextEntries: DefaultContextEntries, contextBytes: o.ContextMaxBytes}
	fail := func(format string, args ...any) error {
		return errs.E(errs.Invalid, "agent %q (kind %s): "+format, append([]any{spec.Name, spec.Kind}, args...)...)
	}
	if o.ContextEntries != nil {
		if *o.ContextEntries < 0 {
			return nil, fail("context_entries must not be negative")
		}
		p.contextEntries = min(*o.ContextEntries, contextstore.MaxLimit)
	}
	if p.contextBytes < 0 {
		return nil, fail("context_max_bytes must not be negative")
	}
	if p.contextBytes == 0 {
		p.contextBytes = DefaultContextMaxBytes
	}
	if o.MaxTokens < 0 {
		return nil, fail("max_tokens must not be negative")
	}

	in, err := SchemaOption(o.InputSchema)
	if err != nil {
		return nil, fail("input_schema: %v", err)
	}
	userSrc := o.Prompt
	if in == nil {
		in, _ = schemas.Parse([]byte(DefaultInputSchema))
		if userSrc == "" {
			userSrc = DefaultPrompt
		}
	} else if !in.IsObject() {
		return nil, fail(`input_schema must describe an object ("type": "object")`)
	}
	if userSrc == "" {
		userSrc = DefaultJSONPrompt
	}
	spec.Input = in
	if p.output, err = SchemaOption(o.OutputSchema); err != nil {
		return nil, fail("output_schema: %v", err)
	}
	spec.Output = p.output

	if p.system, err = parseTemplate("system", o.System); err != nil {
		return nil, fail("%v", err)
	}
	if p.user, err = parseTemplate("prompt", userSrc); err != nil {
		return nil, fail("%v", err)
	}
	p.needsContext = p.contextEntries > 0 && strings.Contains(o.System+userSrc, "Context")
	if err := p.check(); err != nil {
		return nil, fail("%v", err)
	}
	return p, nil
}

// Output returns the output schema; nil when the agent answers with text.
func (p *Prompt) Output() *schemas.Schema { return p.output }

// SchemaOption compiles a schema option: a JSON object (a YAML mapping in a
// config file), or a string holding one. Empty or null means none (nil).
func SchemaOption(raw json.RawMessage) (*schemas.Schema, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		raw = []byte(strings.TrimSpace(s))
		if len(raw) == 0 {
			return nil, nil
		}
	}
	if raw[0] != '{' {
		return nil, errors.New("must be a JSON Schema object")
	}
	return schemas.Parse(raw)
}

func parseTemplate(name, src string) (*template.Template, error) {
	if src == "" {
		return nil, nil
	}
	t, err := template.New(name).Funcs(funcs).Option("missingkey=default").Parse(src)
	if err != nil {
		return nil, templateError(err)
	}
	return t, nil
}

// check runs the templates once on sample data, to catch at load what
// parsing cannot: a misspelt field of .Agent or .Context, a function
// called with the wrong arguments. Errors that depend on the input's values
// are left to the call.
func (p *Prompt) check() error {
	data := &TemplateData{
		Input:   map[string]any{},
		Context: []ContextEntry{{Seq: 1, Role: contextstore.RoleTool, Content: map[string]any{}, JSON: "{}"}},
		Agent:   p.agentInfo(),
	}
	for _, t := range []*template.Template{p.system, p.user} {
		if t == nil {
			continue
		}
		err := t.Execute(&bytes.Buffer{}, data)
		if err != nil && (strings.Contains(err.Error(), "can't evaluate field") || strings.Contains(err.Error(), "wrong number of args")) {
			return templateError(err)
		}
	}
	return nil
}

// templateLoc matches text/template's "template: NAME:LINE[:COL]: MSG".
var (
	templateLoc  = regexp.MustCompile(`^template: (\w+):(\d+)(?::(\d+))?: (.*)$`)
	templateExec = regexp.MustCompile(`^executing "\w+" at (<.*?>): `)
)

// templateError rewrites a text/template error as "prompt template, line 3:
// function "x" not defined".
func templateError(err error) error {
	m := templateLoc.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	msg := templateExec.ReplaceAllString(m[4], "at $1: ")
	line, _ := strconv.Atoi(m[2])
	return fmt.Errorf("%s template, line %d: %s", m[1], line, msg)
}

func (p *Prompt) agentInfo() AgentInfo {
	s := p.spec
	return AgentInfo{Name: s.Name, Version: s.Version, Title: s.Title, Description: s.Description, Tags: s.Tags, Metadata: s.Metadata}
}

// Render executes the templates for call: the system prompt ("" if none)
// and the user message.
func (p *Prompt) Render(ctx context.Context, call *agents.Call) (system, user string, err error) {
	data := &TemplateData{Agent: p.agentInfo()}
	if len(call.Args) > 0 {
		dec := json.NewDecoder(bytes.NewReader(call.Args))
		dec.UseNumber()
		if err := dec.Decode(&data.Input); err != nil {
			return "", "", errs.E(errs.Invalid, "arguments: %w", err)
		}
	}
	if data.Input == nil {
		data.Input = map[string]any{}
	}
	if p.needsContext && call.Store != nil {
		data.Context, err = p.loadContext(ctx, call)
		if err != nil {
			return "", "", err
		}
	}
	run := func(t *template.Template) (string, error) {
		if t == nil {
			return "", nil
		}
		var b strings.Builder
		if err := t.Execute(&b, data); err != nil {
			return "", errs.E(errs.Invalid, "agent %q: %v", p.spec.Name, templateError(err))
		}
		return b.String(), nil
	}
	if system, err = run(p.system); err != nil {
		return "", "", err
	}
	if user, err = run(p.user); err != nil {
		return "", "", err
	}
	return system, user, nil
}

// loadContext reads the session's newest entries, keeping the newest that
// fit in the byte budget.
func (p *Prompt) loadContext(ctx context.Context, call *agents.Call) ([]ContextEntry, error) {
	entries, err := call.Store.History(ctx, call.Session, contextstore.HistoryQuery{Last: true, Limit: p.contextEntries})
	if err != nil {
		return nil, fmt.Errorf("read the session's context: %w", err)
	}
	budget := p.contextBytes
	first := len(entries)
	for first > 0 {
		n := len(entries[first-1].Content)
		if n > budget {
			break
		}
		budget -= n
		first--
	}
	out := make([]ContextEntry, 0, len(entries)-first)
	for _, e := range entries[first:] {
		var content any
		dec := json.NewDecoder(bytes.NewReader(e.Content))
		dec.UseNumber()
		_ = dec.Decode(&content)
		out = append(out, ContextEntry{Seq: e.Seq, Time: e.Time, Role: e.Role, Agent: e.Agent, Content: content, JSON: string(e.Content)})
	}
	return out, nil
}

// JSONInstruction returns the instruction added to the system prompt when
// the model has no native structured output: answer with JSON matching the
// schema. "" when the prompt has no output schema.
func (p *Prompt) JSONInstruction() string {
	if p.output == nil {
		return ""
	}
	return "Answer with only a JSON value (no prose, no code fences) that matches this JSON Schema:\n" + string(p.output.JSON())
}

// Generator asks a model to continue a conversation and returns its answer
// (text, or JSON text when the prompt has an output schema).
type Generator func(ctx context.Context, system string, turns []Turn) (string, error)

// Run renders the prompt for call and asks gen. Without an output schema
// the answer is the result's text. With one, the answer must be JSON that
// matches it: an answer that does not is shown to the model with the
// validation error, once; if the second answer does not match either, the
// result is a tool error (IsError) saying why. Errors from gen are
// returned unchanged (an *agents.InputRequired included).
func (p *Prompt) Run(ctx context.Context, call *agents.Call, gen Generator) (*agents.Result, error) {
	system, user, err := p.Render(ctx, call)
	if err != nil {
		return nil, err
	}
	turns := []Turn{{Role: "user", Text: user}}
	answer, err := gen(ctx, system, turns)
	if err != nil {
		return nil, err
	}
	if p.output == nil {
		return &agents.Result{Content: []agents.Content{agents.Text(answer)}}, nil
	}
	out, verr := p.Validate(answer)
	if verr == nil {
		return &agents.Result{Output: out}, nil
	}
	logger := call.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.LogAttrs(ctx, slog.LevelDebug, "model answer breaks the output schema; asking for a repair",
		slog.String("agent", call.Agent), slog.String("session", call.Session), slog.String("error", verr.Error()))
	turns = append(turns, Turn{Role: "assistant", Text: answer}, Turn{Role: "user", Text: RepairMessage(verr)})
	answer, err = gen(ctx, system, turns)
	if err != nil {
		return nil, err
	}
	out, verr = p.Validate(answer)
	if verr == nil {
		return &agents.Result{Output: out}, nil
	}
	msg := fmt.Sprintf("the model's answer does not match the output schema, even after one repair attempt: %v (answer: %s)", verr, excerpt(answer, 300))
	return &agents.Result{IsError: true, Content: []agents.Content{agents.Text(msg)}}, nil
}

// Validate extracts the JSON of a model's answer (tolerating code fences
// and prose around one object) and validates it against the output schema.
// The error is a *schemas.ValidationError.
func (p *Prompt) Validate(answer string) (json.RawMessage, error) {
	data := ExtractJSON(answer)
	if _, err := p.output.ValidateJSON(data); err != nil {
		return nil, err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		return nil, &schemas.ValidationError{Msg: "not valid JSON: " + err.Error()}
	}
	return compact.Bytes(), nil
}

// RepairMessage is the user message that shows the model why its answer
// was rejected.
func RepairMessage(verr error) string {
	return "Your answer does not match the required JSON Schema: " + verr.Error() +
		". Answer again with only the corrected JSON value."
}

// ExtractJSON returns the JSON in a model's answer: the answer itself, the
// content of a ``` code fence, or the span from the first '{' (or '[') to
// the last '}' (or ']') when that is valid JSON.
func ExtractJSON(answer string) []byte {
	s := strings.TrimSpace(answer)
	if json.Valid([]byte(s)) {
		return []byte(s)
	}
	if i := strings.Index(s, "```"); i >= 0 {
		rest := s[i+3:]
		if nl := strings.IndexByte(rest, '\n'); nl >= 0 {
			rest = rest[nl+1:] // drop the language tag
		}
		if j := strings.Index(rest, "```"); j >= 0 {
			if inner := strings.TrimSpace(rest[:j]); json.Valid([]byte(inner)) {
				return []byte(inner)
			}
		}
	}
	for _, pair := range [][2]string{{"{", "}"}, {"[", "]"}} {
		i, j := strings.Index(s, pair[0]), strings.LastIndex(s, pair[1])
		if i >= 0 && j > i && json.Valid([]byte(s[i:j+1])) {
			return []byte(s[i : j+1])
		}
	}
	return []byte(s)
}

func excerpt(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
