// Package agents defines the one abstraction of mcptower: the Agent. An LLM
// prompt, an upstream MCP server's tool, an HTTP endpoint, a Go function and a
// built-in tool are all Agents; the Registry holds the live ones and the
// Engine invokes them through one pipeline for every edge (MCP, REST, CLI).
//
// The package knows nothing of MCP: the server package maps Specs to tools and
// Results to tool results.
package agents

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"mcptower/contextstore"
	"mcptower/internal/errs"
	"mcptower/schemas"
)

// Spec describes an agent: its identity, its contract (input and output
// schemas) and what a host may assume about it.
type Spec struct {
	Name        string            `json:"name"`
	Version     string            `json:"version"`
	Title       string            `json:"title,omitempty"`
	Description string            `json:"description,omitempty"`
	Kind        string            `json:"kind,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"` // task_type, owner, cost tier, ...
	// Input is the schema of the arguments; it must describe an object.
	// Nil means any object.
	Input *schemas.Schema `json:"input_schema,omitempty"`
	// Output is the schema of the structured output; nil means the agent
	// returns content blocks only.
	Output *schemas.Schema `json:"output_schema,omitempty"`
	Hints  Hints           `json:"hints"`
	// Timeout bounds one invocation; zero means the engine's default.
	Timeout time.Duration `json:"timeout,omitempty"`
}

// Ref returns "name@version".
func (s *Spec) Ref() string { return s.Name + "@" + s.Version }

// Hints tell a host what an agent does to the world; the server maps them to
// MCP tool annotations. Nil pointers mean the MCP default (true).
type Hints struct {
	ReadOnly    bool  `json:"read_only,omitempty"`
	Destructive *bool `json:"destructive,omitempty"`
	Idempotent  bool  `json:"idempotent,omitempty"`
	OpenWorld   *bool `json:"open_world,omitempty"`
}

// Agent is anything callable.
type Agent interface {
	// Spec returns the agent's description. It must not change while the
	// agent is registered, and callers must not modify it.
	Spec() *Spec
	// Invoke runs one call. Arguments have been validated against
	// Spec().Input. An error is a failed call (the edge reports it as a tool
	// error); Result.IsError is an answer the agent itself marks as failed.
	Invoke(ctx context.Context, call *Call) (*Result, error)
}

// Starter is implemented by agents that must start (connect, spawn) before
// serving; the registry's owner calls it before registering them.
type Starter interface {
	Start(ctx context.Context) error
}

// HealthChecker is implemented by agents that can report their health.
type HealthChecker interface {
	CheckHealth(ctx context.Context) error
}

// Dynamic is implemented by an agent that stands for a set of agents known
// only at run time, such as the tools of an upstream MCP server (kind "mcp").
// Its owner registers the members, not the Dynamic agent itself (whose
// Invoke is never reached through a registry): after Start, it calls Attach
// once, and from then on the agent adds, replaces and removes its members in
// r as the set changes. The registry's subscribers see every change, so
// connected MCP clients get notifications/tools/list_changed. Close removes
// the members the agent registered.
//
// A member never replaces an agent it does not own: a name already taken by
// another agent is skipped (and logged), and removal leaves alone an entry
// that is no longer the member's.
type Dynamic interface {
	Agent
	Attach(r *Registry)
}

type loggerKey struct{}

// ContextWithLogger returns a copy of ctx carrying logger. The owner of a
// registry passes its logger this way to Build (and Start), for agents that
// log outside any call: an upstream's stderr, its restarts.
func ContextWithLogger(ctx context.Context, logger *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, logger)
}

// LoggerFrom returns the logger ctx carries (see ContextWithLogger), or
// slog.Default().
func LoggerFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok && l != nil {
		return l
	}
	return slog.Default()
}

// Call is one invocation's input and its handles on the world.
type Call struct {
	// Agent is the resolved "name@version".
	Agent string
	// Args are the raw JSON arguments, already validated.
	Args json.RawMessage
	// Session is the context session of the call (never empty).
	Session string
	// Store is the context store; nil when the server runs without one.
	Store contextstore.Store
	// Registry is the registry the agent was resolved from.
	Registry *Registry
	// Client reaches the connected client (progress, logging); it is never
	// nil, but its methods are no-ops where there is no client.
	Client Client
	// Logger carries the call's attributes (agent, session).
	Logger *slog.Logger
}

// Client is what an agent may ask of the connected MCP client. Methods return
// an error with code Unavailable when the client cannot do it.
type Client interface {
	// Progress reports progress of the current call, if the client asked for
	// progress (a progress token); otherwise it does nothing.
	Progress(ctx context.Context, progress, total float64, message string) error
	// Log sends a log message to the client (MCP notifications/message).
	Log(ctx context.Context, level slog.Level, logger string, data any) error
	// Supports reports whether the client declared a feature: "sampling",
	// "elicitation" or "roots"; or "progress" when the current call asked
	// for progress notifications (a progress token), so that an agent can
	// skip work whose only purpose is reporting progress.
	Supports(feature string) bool
	// Ask asks the client for several inputs at once (sampling, elicitation,
	// roots), keyed by names the agent chooses, and returns the answers by
	// the same keys.
	//
	// A 2025-11-25 session is asked with server→client requests and Ask
	// returns when they are answered. A stateless 2026-07-28 client answers
	// in a retry of the whole call (SEP-2322 multi-round-trip): Ask then
	// returns an *InputRequired error, which the agent must return as is;
	// the call is invoked again from the start and, this time, Ask returns
	// the answers. Agents that ask must therefore be deterministic up to
	// their Ask calls, and use distinct keys for distinct questions.
	//
	// A client that did not declare a capability an input needs gets a
	// *CapabilityError.
	Ask(ctx context.Context, inputs map[string]Input) (map[string]Answer, error)
	// Sample asks the client's own model for a message: Ask with one
	// sampling input under a generated key.
	Sample(ctx context.Context, req *SampleRequest) (*SampleResult, error)
	// Elicit asks the user for input through the client: Ask with one
	// elicitation input under a generated key.
	Elicit(ctx context.Context, req *ElicitRequest) (*ElicitResult, error)
	// CloseStream asks the transport to end the call's response stream now
	// and have the client reconnect after retryAfter to receive the rest
	// (resumable Streamable HTTP, SEP-1699). It does nothing elsewhere.
	CloseStream(retryAfter time.Duration)
}

// Input is one question for the client: exactly one field is set.
type Input struct {
	Sample    *SampleRequest `json:"sample,omitempty"`
	Elicit    *ElicitRequest `json:"elicit,omitempty"`
	ListRoots bool           `json:"list_roots,omitempty"`
}

// Answer is the client's answer to an Input: the field matching the
// question is set.
type Answer struct {
	Sample *SampleResult `json:"sample,omitempty"`
	Elicit *ElicitResult `json:"elicit,omitempty"`
	Roots  []Root        `json:"roots,omitempty"`
}

// Root is a filesystem or URI root the client exposes.
type Root struct {
	URI  string `json:"uri"`
	Name string `json:"name,omitempty"`
}

// Message is one message of a sampling conversation or a prompt.
type Message struct {
	Role    string  `json:"role"` // user or assistant
	Content Content `json:"content"`
}

// SampleRequest asks the client's model for a completion.
type SampleRequest struct {
	Messages      []Message `json:"messages"`
	SystemPrompt  string    `json:"system_prompt,omitempty"`
	MaxTokens     int       `json:"max_tokens"`
	Temperature   float64   `json:"temperature,omitempty"`
	StopSequences []string  `json:"stop_sequences,omitempty"`
	// ModelHints name preferred models, best first (the client decides).
	ModelHints []string `json:"model_hints,omitempty"`
}

// SampleResult is the client model's answer.
type SampleResult struct {
	Role       string  `json:"role"`
	Content    Content `json:"content"`
	Model      string  `json:"model,omitempty"`
	StopReason string  `json:"stop_reason,omitempty"`
}

// ElicitRequest asks the user for structured input (Mode "form", the
// default, with a JSON Schema) or to visit a URL (Mode "url").
type ElicitRequest struct {
	Message string          `json:"message"`
	Schema  json.RawMessage `json:"schema,omitempty"`
	Mode    string          `json:"mode,omitempty"`
	URL     string          `json:"url,omitempty"`
}

// ElicitResult is the user's answer: Action is accept, decline or cancel.
type ElicitResult struct {
	Action  string         `json:"action"`
	Content map[string]any `json:"content,omitempty"`
}

// InputRequired is returned by Client.Ask (and Sample, Elicit) when the
// answers must come in a retry of the call (stateless clients). Agents
// return it unchanged; the engine passes it to the edge, which asks the
// client.
type InputRequired struct {
	// Inputs are the questions not answered yet, by key.
	Inputs map[string]Input
}

func (e *InputRequired) Error() string {
	return "input required from the client; return this error unchanged"
}

// CapabilityError says the client lacks a capability the call needs. Over
// the 2026-07-28 protocol it becomes a -32021 protocol error; otherwise a
// tool error. Its code is Unavailable.
type CapabilityError struct {
	// Capability is "sampling", "elicitation" or "roots".
	Capability string
}

func (e *CapabilityError) Error() string {
	return "the connected MCP client does not support " + e.Capability + " (it declared no " + e.Capability + " capability)"
}

// Unwrap gives the error its domain code.
func (e *CapabilityError) Unwrap() error {
	return errs.E(errs.Unavailable, "missing client capability")
}

// NoClient is a Client for calls with nobody on the other end (CLI, REST).
type NoClient struct{}

// Progress does nothing.
func (NoClient) Progress(context.Context, float64, float64, string) error { return nil }

// Log does nothing.
func (NoClient) Log(context.Context, slog.Level, string, any) error { return nil }

// Supports reports false: there is no client.
func (NoClient) Supports(string) bool { return false }

// Ask fails: there is nobody to ask.
func (NoClient) Ask(context.Context, map[string]Input) (map[string]Answer, error) {
	return nil, errs.E(errs.Unavailable, "this call has no MCP client to ask (sampling, elicitation and roots need one)")
}

// Sample fails: there is no client model to ask.
func (NoClient) Sample(context.Context, *SampleRequest) (*SampleResult, error) {
	return nil, errs.E(errs.Unavailable, "sampling needs a connected MCP client that supports sampling; this call has none")
}

// Elicit fails: there is no user to ask.
func (NoClient) Elicit(context.Context, *ElicitRequest) (*ElicitResult, error) {
	return nil, errs.E(errs.Unavailable, "elicitation needs a connected MCP client that supports elicitation; this call has none")
}

// CloseStream does nothing.
func (NoClient) CloseStream(time.Duration) {}

// Result is what an invocation produced.
type Result struct {
	// Output is the structured output; it must match Spec.Output when that
	// is set.
	Output json.RawMessage `json:"output,omitempty"`
	// Content are content blocks for the model; if empty, the edge renders
	// Output (or nothing) as one text block.
	Content []Content `json:"content,omitempty"`
	// Usage is what the call consumed, if known.
	Usage *Usage `json:"usage,omitempty"`
	// IsError marks an answer the agent reports as failed; the model reads
	// Content to see why.
	IsError bool `json:"is_error,omitempty"`
}

// Content is one content block, mirroring MCP's content types without
// depending on the protocol package.
type Content struct {
	// Type is "text", "image", "audio", "resource" (embedded) or "resource_link".
	Type     string `json:"type"`
	Text     string `json:"text,omitempty"`      // text; resource text
	Data     []byte `json:"data,omitempty"`      // image, audio; resource blob
	MIMEType string `json:"mime_type,omitempty"` // image, audio, resource
	URI      string `json:"uri,omitempty"`       // resource, resource_link
	Name     string `json:"name,omitempty"`      // resource_link
}

// Text returns a text content block.
func Text(s string) Content { return Content{Type: "text", Text: s} }

// Usage is what one call consumed.
type Usage struct {
	InputTokens  int64   `json:"input_tokens,omitempty"`
	OutputTokens int64   `json:"output_tokens,omitempty"`
	CostUSD      float64 `json:"cost_usd,omitempty"`
}

// Errorf returns an error with a domain code, for agents to signal what kind
// of failure they hit (errs.Invalid, errs.Unavailable, ...).
func Errorf(code errs.Code, format string, args ...any) error {
	return errs.E(code, format, args...)
}

// Error codes agents and callers may use with Errorf and CodeOf.
const (
	CodeInternal     = errs.Internal
	CodeNotFound     = errs.NotFound
	CodeInvalid      = errs.Invalid
	CodeUnavailable  = errs.Unavailable
	CodeTimeout      = errs.Timeout
	CodeConflict     = errs.Conflict
	CodeRateLimited  = errs.RateLimited
	CodeUnauthorized = errs.Unauthorized
	CodeForbidden    = errs.Forbidden
)

// CodeOf returns err's domain code (CodeInternal if it has none).
func CodeOf(err error) errs.Code { return errs.CodeOf(err) }
