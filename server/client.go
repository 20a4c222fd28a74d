package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"mcptower/agents"
	"mcptower/internal/errs"
)

// client is the agents.Client of one tools/call.
//
// Sampling and elicitation reach the client in one of two ways. A
// 2025-11-25 session gets a server→client request. A 2026-07-28 client
// (multi-round-trip, SEP-2322) gets an input-required result and retries the
// call with the answers; the agent is re-run from the start and, this time,
// finds the answer to each Sample/Elicit in order. Answers of earlier rounds
// travel in the opaque requestState.
type client struct {
	ss    *mcp.ServerSession
	token any

	mrtr    bool                       // the client speaks multi-round-trip
	answers map[string]json.RawMessage // by input key, all rounds so far
	next    int                        // input requests made in this run
}

func newClient(req *mcp.CallToolRequest) (*client, error) {
	c := &client{ss: req.Session, token: req.Params.GetProgressToken()}
	if c.ss == nil {
		return c, nil
	}
	if ip := c.ss.InitializeParams(); ip != nil && ip.ProtocolVersion >= protocol2026 {
		c.mrtr = true
	}
	if !c.mrtr {
		return c, nil
	}
	p := req.Params
	if p.RequestState != "" {
		raw, err := base64.RawURLEncoding.DecodeString(p.RequestState)
		if err == nil {
			err = json.Unmarshal(raw, &c.answers)
		}
		if err != nil {
			return nil, errs.E(errs.Invalid, "requestState is not one this server issued: %w", err)
		}
	}
	for k, v := range p.InputResponses {
		data, err := json.Marshal(v)
		if err != nil {
			return nil, errs.E(errs.Invalid, "input response %q: %w", k, err)
		}
		if c.answers == nil {
			c.answers = map[string]json.RawMessage{}
		}
		c.answers[k] = data
	}
	return c, nil
}

func (c *client) Progress(ctx context.Context, progress, total float64, message string) error {
	if c.ss == nil || c.token == nil {
		return nil
	}
	return c.ss.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: c.token, Progress: progress, Total: total, Message: message})
}

func (c *client) Log(ctx context.Context, level slog.Level, logger string, data any) error {
	if c.ss == nil {
		return nil
	}
	return c.ss.Log(ctx, &mcp.LoggingMessageParams{Level: mcpLevel(level), Logger: logger, Data: data})
}

func (c *client) capabilities() *mcp.ClientCapabilities {
	if c.ss == nil {
		return nil
	}
	if ip := c.ss.InitializeParams(); ip != nil {
		return ip.Capabilities
	}
	return nil
}

// ask returns the answer to the next input request of this run, or an
// *agents.InputRequired for the edge to send (multi-round-trip clients).
func (c *client) ask(request any, answer any) (bool, error) {
	key := "in-" + strconv.Itoa(c.next)
	c.next++
	raw, ok := c.answers[key]
	if !ok {
		return false, &agents.InputRequired{Key: key, Request: request}
	}
	if err := json.Unmarshal(raw, answer); err != nil {
		return false, errs.E(errs.Invalid, "client answer to %s: %w", key, err)
	}
	return true, nil
}

func (c *client) Sample(ctx context.Context, req *agents.SampleRequest) (*agents.SampleResult, error) {
	caps := c.capabilities()
	if caps == nil || caps.Sampling == nil {
		return nil, errs.E(errs.Unavailable, "the connected MCP client does not support sampling (it declared no sampling capability); use an agent with its own model, or a client that can sample")
	}
	params := sampleParams(req)
	var res *mcp.CreateMessageResult
	if c.mrtr {
		res = new(mcp.CreateMessageResult)
		if _, err := c.ask(req, res); err != nil {
			return nil, err
		}
	} else {
		var err error
		res, err = c.ss.CreateMessage(ctx, params)
		if err != nil {
			return nil, errs.Wrap(errs.Unavailable, err, "sampling request to the client failed")
		}
	}
	return &agents.SampleResult{Role: string(res.Role), Content: fromMCPContent(res.Content), Model: res.Model, StopReason: res.StopReason}, nil
}

func (c *client) Elicit(ctx context.Context, req *agents.ElicitRequest) (*agents.ElicitResult, error) {
	caps := c.capabilities()
	if caps == nil || caps.Elicitation == nil {
		return nil, errs.E(errs.Unavailable, "the connected MCP client does not support elicitation (it declared no elicitation capability)")
	}
	var res *mcp.ElicitResult
	if c.mrtr {
		res = new(mcp.ElicitResult)
		if _, err := c.ask(req, res); err != nil {
			return nil, err
		}
	} else {
		var err error
		res, err = c.ss.Elicit(ctx, elicitParams(req))
		if err != nil {
			return nil, errs.Wrap(errs.Unavailable, err, "elicitation request to the client failed")
		}
	}
	return &agents.ElicitResult{Action: res.Action, Content: res.Content}, nil
}

// inputRequiredResult turns an agent's *InputRequired into the
// multi-round-trip result that asks the client, carrying the answers so far.
func (c *client) inputRequiredResult(ir *agents.InputRequired) (*mcp.CallToolResult, error) {
	var params mcp.InputRequest
	switch r := ir.Request.(type) {
	case *agents.SampleRequest:
		params = sampleParams(r)
	case *agents.ElicitRequest:
		params = elicitParams(r)
	default:
		return nil, fmt.Errorf("input request %s: unsupported type %T", ir.Key, ir.Request)
	}
	state := ""
	if len(c.answers) > 0 {
		raw, err := json.Marshal(c.answers)
		if err != nil {
			return nil, err
		}
		state = base64.RawURLEncoding.EncodeToString(raw)
	}
	return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{ir.Key: params}, RequestState: state}, nil
}

func sampleParams(req *agents.SampleRequest) *mcp.CreateMessageParams {
	p := &mcp.CreateMessageParams{
		MaxTokens:     int64(req.MaxTokens),
		SystemPrompt:  req.SystemPrompt,
		Temperature:   req.Temperature,
		StopSequences: req.StopSequences,
	}
	if p.MaxTokens <= 0 {
		p.MaxTokens = 1024
	}
	for _, m := range req.Messages {
		p.Messages = append(p.Messages, &mcp.SamplingMessage{Role: mcp.Role(m.Role), Content: toMCPContent(&m.Content)})
	}
	if len(req.ModelHints) > 0 {
		p.ModelPreferences = &mcp.ModelPreferences{}
		for _, h := range req.ModelHints {
			p.ModelPreferences.Hints = append(p.ModelPreferences.Hints, &mcp.ModelHint{Name: h})
		}
	}
	return p
}

func elicitParams(req *agents.ElicitRequest) *mcp.ElicitParams {
	p := &mcp.ElicitParams{Message: req.Message, Mode: req.Mode, URL: req.URL}
	if len(req.Schema) > 0 {
		p.RequestedSchema = req.Schema
	}
	return p
}

func fromMCPContent(c mcp.Content) agents.Content {
	switch v := c.(type) {
	case *mcp.TextContent:
		return agents.Text(v.Text)
	case *mcp.ImageContent:
		return agents.Content{Type: "image", Data: v.Data, MIMEType: v.MIMEType}
	case *mcp.AudioContent:
		return agents.Content{Type: "audio", Data: v.Data, MIMEType: v.MIMEType}
	case *mcp.ResourceLink:
		return agents.Content{Type: "resource_link", URI: v.URI, Name: v.Name, MIMEType: v.MIMEType}
	case *mcp.EmbeddedResource:
		if v.Resource != nil {
			return agents.Content{Type: "resource", URI: v.Resource.URI, MIMEType: v.Resource.MIMEType, Text: v.Resource.Text, Data: v.Resource.Blob}
		}
	}
	return agents.Content{Type: "text"}
}
