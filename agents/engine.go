package agents

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"mcptower/contextstore"
	"mcptower/internal/errs"
	"mcptower/schemas"
)

// DefaultTimeout bounds an invocation whose agent sets no timeout.
const DefaultTimeout = 60 * time.Second

// Engine is the invoke pipeline, the one code path behind every edge:
//
//	resolve → validate input → invoke with timeout → validate output →
//	record in the context store → log
//
// MCP tool handlers, the REST API and the CLI are thin adapters over Invoke.
type Engine struct {
	// Registry resolves agents. Required.
	Registry *Registry
	// Store records every call in its session's context; nil records nothing.
	Store contextstore.Store
	// Logger logs every call; nil uses slog.Default().
	Logger *slog.Logger
	// Timeout is the default per-call timeout; zero means DefaultTimeout.
	Timeout time.Duration
	// Observer watches every call (metrics, traces); nil means none.
	Observer Observer
}

// Observer watches invocations. StartCall runs once the agent is resolved
// (agent is "name@version", or the requested name when resolving failed);
// the context it returns is the call's (a span may live in it), and end
// runs when the call is over.
type Observer interface {
	StartCall(ctx context.Context, agent, session string) (context.Context, func(o Outcome))
}

// Outcome is how a call ended, for an Observer.
type Outcome struct {
	// Result is "ok", "tool_error" (the agent answered with IsError),
	// "input_required" (a 2026 client must answer and retry), or the domain
	// error code of a failed call ("invalid", "timeout", ...).
	Result   string
	Duration time.Duration
	Usage    *Usage
	Err      error
}

// Request is one invocation.
type Request struct {
	// Agent is "name" (newest version) or "name@version".
	Agent string
	// Args are the JSON arguments (an object; empty means {}).
	Args json.RawMessage
	// Session is the context session; empty starts a new one, whose id the
	// Response carries.
	Session string
	// Client reaches the caller's MCP client; nil means none.
	Client Client
}

// Response is the outcome of Invoke. It is returned even when Invoke fails
// after resolving, so edges can report the session and the agent.
type Response struct {
	Agent    string // resolved name@version
	Session  string
	Result   *Result // nil when Invoke returns an error, unless only recording the call failed
	Seq      int64   // the context entry recording the call, 0 if none
	Duration time.Duration
}

var emptyObject = json.RawMessage(`{}`)

// Invoke runs req through the pipeline. Its error carries a domain code:
// NotFound (unknown agent or version), Invalid (arguments break the input
// schema; the message names the field), Timeout, Unavailable (store or
// upstream down), or the agent's own error.
func (e *Engine) Invoke(ctx context.Context, req Request) (resp *Response, err error) {
	start := time.Now()
	resp = &Response{Session: req.Session}
	logger := e.Logger
	if logger == nil {
		logger = slog.Default()
	}

	a, err := e.Registry.Resolve(req.Agent)
	if err != nil {
		if e.Observer != nil {
			_, end := e.Observer.StartCall(ctx, req.Agent, req.Session)
			end(Outcome{Result: errs.CodeOf(err).String(), Duration: time.Since(start), Err: err})
		}
		return resp, err
	}
	spec := a.Spec()
	resp.Agent = spec.Ref()
	if e.Observer != nil {
		var end func(Outcome)
		ctx, end = e.Observer.StartCall(ctx, resp.Agent, req.Session)
		defer func() {
			o := Outcome{Result: "ok", Duration: time.Since(start), Err: err}
			_, needsInput := errors.AsType[*InputRequired](err)
			switch {
			case needsInput:
				o.Result, o.Err = "input_required", nil // the client answers, then the call is retried
			case err != nil:
				o.Result = errs.CodeOf(err).String()
			case resp.Result != nil:
				o.Usage = resp.Result.Usage
				if resp.Result.IsError {
					o.Result = "tool_error"
				}
			}
			end(o)
		}()
	}

	if resp.Session == "" {
		resp.Session = NewSessionID()
	} else if err := contextstore.ValidateSession(resp.Session); err != nil {
		return resp, err
	}

	args := req.Args
	if len(args) == 0 || string(args) == "null" {
		args = emptyObject
	}
	if spec.Input != nil {
		if _, err := spec.Input.ValidateJSON(args); err != nil {
			return resp, invalidArgs(spec, err)
		}
	}

	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = e.Timeout
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	client := req.Client
	if client == nil {
		client = NoClient{}
	}
	call := &Call{
		Agent:    resp.Agent,
		Args:     args,
		Session:  resp.Session,
		Store:    e.Store,
		Registry: e.Registry,
		Client:   client,
		Logger:   logger,
	}
	res, err := e.run(ctx, a, call, timeout)
	if err == nil {
		err = checkResult(spec, res)
	}
	resp.Duration = time.Since(start)
	if _, ok := errors.AsType[*InputRequired](err); ok {
		resp.Duration = time.Since(start)
		return resp, err // not finished: recorded when the retry completes
	}
	if e.Store != nil { // the agent ran: record the call, failed or not
		seq, serr := e.record(ctx, call, res, err, resp.Duration)
		resp.Seq = seq
		if serr != nil && err == nil {
			// The agent ran (and may have changed the world): keep its result
			// for the caller, who would otherwise retry blind.
			resp.Result = res
			err = errs.Wrap(errs.Unavailable, serr, fmt.Sprintf("agent %s ran, but the call could not be recorded in the context store", resp.Agent))
		}
	}
	if err != nil {
		logger.LogAttrs(ctx, slog.LevelWarn, "call failed",
			slog.String("agent", resp.Agent), slog.String("session", resp.Session),
			slog.Duration("duration", resp.Duration), slog.String("outcome", errs.CodeOf(err).String()), slog.String("error", err.Error()))
		return resp, err
	}
	resp.Result = res
	if logger.Enabled(ctx, slog.LevelInfo) {
		outcome := "ok"
		if res.IsError {
			outcome = "tool_error"
		}
		logger.LogAttrs(ctx, slog.LevelInfo, "call",
			slog.String("agent", resp.Agent), slog.String("session", resp.Session),
			slog.Duration("duration", resp.Duration), slog.String("outcome", outcome))
	}
	return resp, nil
}

// run invokes the agent with a timeout, turning a panic into an error so one
// bad agent never takes the server down.
func (e *Engine) run(ctx context.Context, a Agent, call *Call, timeout time.Duration) (res *Result, err error) {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, errTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, errs.E(errs.Internal, "agent %s panicked: %v", call.Agent, p)
		}
	}()
	res, err = a.Invoke(ctx, call)
	if ir, ok := errors.AsType[*InputRequired](err); ok {
		return nil, ir // for the edge: ask the client, then retry the call
	}
	if err != nil {
		if errors.Is(context.Cause(ctx), errTimeout) {
			return nil, errs.E(errs.Timeout, "agent %s did not finish within %s", call.Agent, timeout)
		}
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return nil, errs.E(errs.Unavailable, "call to agent %s was cancelled", call.Agent)
		}
		return nil, &errs.Error{Code: errs.CodeOf(err), Msg: fmt.Sprintf("agent %s failed: %v", call.Agent, err), Err: err}
	}
	if res == nil {
		return nil, errs.E(errs.Internal, "agent %s returned no result", call.Agent)
	}
	return res, nil
}

var errTimeout = errors.New("agent timeout")

func checkResult(spec *Spec, res *Result) error {
	if res.IsError || spec.Output == nil {
		return nil
	}
	if len(res.Output) == 0 {
		return errs.E(errs.Internal, "agent %s returned no structured output, but declares an output schema", spec.Ref())
	}
	if _, err := spec.Output.ValidateJSON(res.Output); err != nil {
		return errs.E(errs.Internal, "agent %s returned output that breaks its output schema: %w", spec.Ref(), err)
	}
	return nil
}

func invalidArgs(spec *Spec, err error) error {
	if ve, ok := schemas.AsValidationError(err); ok && ve.Path != "" {
		return &errs.Error{Code: errs.Invalid, Msg: fmt.Sprintf("invalid arguments for %s: field %s: %s", spec.Name, ve.Path, ve.Msg), Err: err}
	}
	return &errs.Error{Code: errs.Invalid, Msg: fmt.Sprintf("invalid arguments for %s: %v", spec.Name, err), Err: err}
}

// callRecord is the content of the context entry recording one call.
type callRecord struct {
	Input      json.RawMessage `json:"input"`
	Output     json.RawMessage `json:"output,omitempty"`
	Content    []Content       `json:"content,omitempty"`
	IsError    bool            `json:"is_error,omitempty"`
	Error      *recordError    `json:"error,omitempty"`
	Usage      *Usage          `json:"usage,omitempty"`
	DurationMS float64         `json:"duration_ms"`
}

type recordError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Engine) record(ctx context.Context, call *Call, res *Result, callErr error, d time.Duration) (int64, error) {
	rec := callRecord{Input: call.Args, DurationMS: float64(d.Microseconds()) / 1000}
	if res != nil {
		rec.Output, rec.IsError, rec.Usage = res.Output, res.IsError, res.Usage
		if len(res.Output) == 0 {
			rec.Content = res.Content
		}
	}
	if callErr != nil {
		rec.Error = &recordError{Code: errs.CodeOf(callErr).String(), Message: callErr.Error()}
	}
	content, err := json.Marshal(&rec)
	if err != nil {
		return 0, fmt.Errorf("encode call record: %w", err)
	}
	// Record even if the caller went away: the call happened.
	ctx = context.WithoutCancel(ctx)
	ent, err := e.Store.Append(ctx, call.Session, contextstore.Entry{
		Role:    contextstore.RoleTool,
		Agent:   call.Agent,
		Content: content,
	})
	if err != nil {
		return 0, err
	}
	return ent.Seq, nil
}

// NewSessionID returns a new random context session id.
func NewSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
