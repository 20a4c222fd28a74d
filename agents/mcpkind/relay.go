package mcpkind

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"mcptower/agents"
)

// The handlers below are the upstream's way back to our client: the SDK
// calls them for requests and notifications the upstream sends.

func (u *Upstream) handleToolListChanged(context.Context, *mcp.ToolListChangedRequest) {
	u.toolsChanged()
}

// toolsChanged has the supervisor re-list the tools.
func (u *Upstream) toolsChanged() {
	select {
	case u.refresh <- struct{}{}:
	default: // a re-list is already due
	}
}

func (u *Upstream) handleProgress(ctx context.Context, req *mcp.ProgressNotificationClientRequest) {
	defer u.notes.done()
	u.relayProgress(req.Params)
}

// relayProgress sends a progress notification of the upstream to the client
// of the call whose token it carries.
func (u *Upstream) relayProgress(p *mcp.ProgressNotificationParams) {
	token, _ := p.ProgressToken.(string)
	u.mu.Lock()
	f := u.calls[token]
	u.mu.Unlock()
	if f == nil {
		return // a call that has ended, or a token that is not ours
	}
	// The call's context, not ours: it identifies the request the
	// notification belongs to (the SDK routes it to that request's stream).
	if err := f.call.Client.Progress(f.ctx, p.Progress, p.Total, p.Message); err != nil {
		u.logger.Debug("relaying progress to the client failed", "error", err)
	}
}

func (u *Upstream) handleLog(ctx context.Context, req *mcp.LoggingMessageRequest) {
	defer u.notes.done()
	u.logger.Debug("upstream log message", "level", string(req.Params.Level), "logger", req.Params.Logger, "data", req.Params.Data)
	f, err := u.pickCall(req.Session, "log")
	if err != nil {
		return
	}
	u.relayLog(f, req.Params)
}

// relayLog sends a log message of the upstream to the client of call f.
func (u *Upstream) relayLog(f *inflight, p *mcp.LoggingMessageParams) {
	if err := f.call.Client.Log(f.ctx, slogLevel(p.Level), p.Logger, p.Data); err != nil {
		u.logger.Debug("relaying a log message to the client failed", "error", err)
	}
}

func (u *Upstream) handleSample(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	f, err := u.pickCall(req.Session, "sampling")
	if err != nil {
		return nil, err
	}
	return u.sample(ctx, f, req.Params)
}

// sample asks the client of call f to answer the upstream's sampling
// request; ctx is the upstream request's.
func (u *Upstream) sample(ctx context.Context, f *inflight, p *mcp.CreateMessageParams) (*mcp.CreateMessageResult, error) {
	ctx, cancel := f.link(ctx)
	defer cancel()
	res, err := f.call.Client.Sample(ctx, sampleRequest(p))
	if err != nil {
		return nil, u.relayError(f, "sampling", err)
	}
	role := res.Role
	if role == "" {
		role = "assistant"
	}
	return &mcp.CreateMessageResult{Role: mcp.Role(role), Content: contentTo(&res.Content), Model: res.Model, StopReason: res.StopReason}, nil
}

func (u *Upstream) handleElicit(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
	f, err := u.pickCall(req.Session, "elicitation")
	if err != nil {
		return nil, err
	}
	return u.elicit(ctx, f, req.Params)
}

// elicit asks the client of call f to answer the upstream's elicitation
// request; ctx is the upstream request's.
func (u *Upstream) elicit(ctx context.Context, f *inflight, p *mcp.ElicitParams) (*mcp.ElicitResult, error) {
	ctx, cancel := f.link(ctx)
	defer cancel()
	var err error
	er := &agents.ElicitRequest{Message: p.Message, Mode: p.Mode, URL: p.URL}
	if p.RequestedSchema != nil {
		if er.Schema, err = json.Marshal(p.RequestedSchema); err != nil {
			return nil, fmt.Errorf("mcptower: encode the requested schema: %w", err)
		}
	}
	res, err := f.call.Client.Elicit(ctx, er)
	if err != nil {
		return nil, u.relayError(f, "elicitation", err)
	}
	return &mcp.ElicitResult{Action: res.Action, Content: res.Content}, nil
}

// relayError is what the upstream gets when our client did not answer.
func (u *Upstream) relayError(f *inflight, what string, err error) error {
	if ir, ok := errors.AsType[*agents.InputRequired](err); ok {
		f.needInput(ir)
		return fmt.Errorf("mcptower: the client answers %s in a retry of the whole call; this call is cancelled and will be made again", what)
	}
	return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: fmt.Sprintf("mcptower could not relay %s to its client: %v", what, err)}
}

// pickCall finds the call an unattributed request or notification from the
// upstream belongs to: the only call in progress on that session, or the
// newest one if all of them come from the same context session (the same
// client conversation).
func (u *Upstream) pickCall(sess *mcp.ClientSession, what string) (*inflight, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var pick *inflight
	n := 0
	for _, f := range u.calls {
		if f.conn.sess != sess {
			continue
		}
		n++
		if pick == nil {
			pick = f
			continue
		}
		if f.call.Session != pick.call.Session {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: fmt.Sprintf("mcptower: upstream %s sent a %s request while calls from different clients are in progress, and MCP does not say which call it belongs to; make one call at a time to this upstream", u.spec.Name, what)}
		}
		if f.seq > pick.seq {
			pick = f
		}
	}
	if pick == nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: fmt.Sprintf("mcptower: upstream %s sent a %s request while no tool call was in progress; mcptower relays %s to its clients only during a call", u.spec.Name, what, what)}
	}
	return pick, nil
}

// link returns a context for relaying a request of the upstream during f:
// the call's context (which tells the SDK which of our client's requests it
// belongs to), also done when the upstream gives up on its request (ctx).
func (f *inflight) link(ctx context.Context) (context.Context, context.CancelFunc) {
	lctx, cancel := context.WithCancel(f.ctx)
	stop := context.AfterFunc(ctx, cancel)
	return lctx, func() { stop(); cancel() }
}

func sampleRequest(p *mcp.CreateMessageParams) *agents.SampleRequest {
	sr := &agents.SampleRequest{
		SystemPrompt:  p.SystemPrompt,
		MaxTokens:     int(p.MaxTokens),
		Temperature:   p.Temperature,
		StopSequences: p.StopSequences,
	}
	for _, m := range p.Messages {
		if m == nil {
			continue
		}
		sr.Messages = append(sr.Messages, agents.Message{Role: string(m.Role), Content: contentFrom(m.Content)})
	}
	if mp := p.ModelPreferences; mp != nil {
		for _, h := range mp.Hints {
			if h != nil && h.Name != "" {
				sr.ModelHints = append(sr.ModelHints, h.Name)
			}
		}
	}
	return sr
}

func slogLevel(l mcp.LoggingLevel) slog.Level {
	switch l {
	case "debug":
		return slog.LevelDebug
	case "info", "notice":
		return slog.LevelInfo
	case "warning":
		return slog.LevelWarn
	default: // error, critical, alert, emergency
		return slog.LevelError
	}
}
