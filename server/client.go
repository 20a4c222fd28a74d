package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"mcptower/agents"
	"mcptower/internal/errs"
)

// client is the agents.Client of one tools/call or prompts/get.
//
// Sampling, elicitation and roots reach the client in one of two ways. A
// 2025-11-25 session gets server→client requests. A 2026-07-28 client
// (multi-round-trip, SEP-2322) gets an input-required result and retries the
// call with the answers; the agent is re-run from the start and, this time,
// finds its answers. Answers of earlier rounds travel in the requestState,
// HMAC-signed so that a client cannot forge or alter them.
type client struct {
	ss    *mcp.ServerSession
	token any
	caps  *mcp.ClientCapabilities
	extra *mcp.RequestExtra
	key   []byte // requestState signing key

	mrtr    bool                       // the client speaks multi-round-trip
	answers map[string]json.RawMessage // by input key, all rounds so far
	next    int                        // generated keys used in this run
}

// inputParams are the parts of a request that carry multi-round-trip state.
type inputParams struct {
	token     any
	responses mcp.InputResponseMap
	state     string
}

func newClient(ss *mcp.ServerSession, caps *mcp.ClientCapabilities, extra *mcp.RequestExtra, key []byte, in inputParams) (*client, error) {
	c := &client{ss: ss, token: in.token, caps: caps, extra: extra, key: key}
	if ss == nil {
		return c, nil
	}
	if ip := ss.InitializeParams(); ip != nil && ip.ProtocolVersion >= protocol2026 {
		c.mrtr = true
	}
	if !c.mrtr {
		return c, nil
	}
	if in.state != "" {
		answers, err := openState(key, in.state)
		if err != nil {
			return nil, err
		}
		c.answers = answers
	}
	for k, v := range in.responses {
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

// errBadState is the protocol error for a requestState this server did not
// issue (or that was altered).
var errBadState = &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "invalid requestState: not issued by this server or altered"}

// sealState signs the answers so far into an opaque requestState.
func sealState(key []byte, answers map[string]json.RawMessage) (string, error) {
	payload, err := json.Marshal(answers)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), nil
}

func openState(key []byte, state string) (map[string]json.RawMessage, error) {
	p, s, ok := strings.Cut(state, ".")
	if !ok {
		return nil, errBadState
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	sig, err2 := base64.RawURLEncoding.DecodeString(s)
	if err1 != nil || err2 != nil {
		return nil, errBadState
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(payload)
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, errBadState
	}
	var answers map[string]json.RawMessage
	if err := json.Unmarshal(payload, &answers); err != nil {
		return nil, errBadState
	}
	return answers, nil
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

func (c *client) Supports(feature string) bool {
	if feature == "progress" {
		return c.ss != nil && c.token != nil
	}
	if c.caps == nil {
		return false
	}
	switch feature {
	case "sampling":
		return c.caps.Sampling != nil
	case "elicitation":
		return c.caps.Elicitation != nil
	case "roots":
		return c.caps.RootsV2 != nil || c.caps.Roots.ListChanged
	}
	return false
}

func (c *client) CloseStream(retryAfter time.Duration) {
	if c.extra != nil && c.extra.CloseSSEStream != nil {
		c.extra.CloseSSEStream(mcp.CloseSSEStreamArgs{RetryAfter: retryAfter})
	}
}

func inputFeature(in agents.Input) string {
	switch {
	case in.Sample != nil:
		return "sampling"
	case in.Elicit != nil:
		return "elicitation"
	case in.ListRoots:
		return "roots"
	}
	return ""
}

func (c *client) Ask(ctx context.Context, inputs map[string]agents.Input) (map[string]agents.Answer, error) {
	if c.ss == nil {
		return agents.NoClient{}.Ask(ctx, inputs)
	}
	for _, in := range inputs {
		f := inputFeature(in)
		if f == "" {
			return nil, errs.E(errs.Internal, "an input sets no question")
		}
		if !c.Supports(f) {
			return nil, &agents.CapabilityError{Capability: f}
		}
	}
	if c.mrtr {
		return c.askRetry(inputs)
	}
	return c.askNow(ctx, inputs)
}

// askRetry returns the answers found in this retry, or InputRequired for
// the questions not answered yet.
func (c *client) askRetry(inputs map[string]agents.Input) (map[string]agents.Answer, error) {
	answers := make(map[string]agents.Answer, len(inputs))
	missing := map[string]agents.Input{}
	for key, in := range inputs {
		raw, ok := c.answers[key]
		if !ok {
			missing[key] = in
			continue
		}
		a, err := decodeAnswer(in, raw)
		if err != nil {
			return nil, errs.E(errs.Invalid, "client answer to %q: %w", key, err)
		}
		answers[key] = a
	}
	if len(missing) > 0 {
		return nil, &agents.InputRequired{Inputs: missing}
	}
	return answers, nil
}

// askNow sends server→client requests, in parallel, and waits for them.
func (c *client) askNow(ctx context.Context, inputs map[string]agents.Input) (map[string]agents.Answer, error) {
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		answers  = make(map[string]agents.Answer, len(inputs))
		firstErr error
	)
	for key, in := range inputs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := c.askOne(ctx, in)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = errs.Wrap(errs.Unavailable, err, fmt.Sprintf("%s request to the client failed", inputFeature(in)))
				}
				return
			}
			answers[key] = a
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return answers, nil
}

func (c *client) askOne(ctx context.Context, in agents.Input) (agents.Answer, error) {
	switch {
	case in.Sample != nil:
		res, err := c.ss.CreateMessage(ctx, sampleParams(in.Sample))
		if err != nil {
			return agents.Answer{}, err
		}
		return agents.Answer{Sample: &agents.SampleResult{Role: string(res.Role), Content: fromMCPContent(res.Content), Model: res.Model, StopReason: res.StopReason}}, nil
	case in.Elicit != nil:
		res, err := c.ss.Elicit(ctx, elicitParams(in.Elicit))
		if err != nil {
			return agents.Answer{}, err
		}
		return agents.Answer{Elicit: &agents.ElicitResult{Action: res.Action, Content: res.Content}}, nil
	default:
		res, err := c.ss.ListRoots(ctx, &mcp.ListRootsParams{})
		if err != nil {
			return agents.Answer{}, err
		}
		return agents.Answer{Roots: fromMCPRoots(res.Roots)}, nil
	}
}

// decodeAnswer reads a client's answer, as JSON, for the question in.
func decodeAnswer(in agents.Input, raw json.RawMessage) (agents.Answer, error) {
	switch {
	case in.Sample != nil:
		// A sampling answer's content is one block, or a list of blocks
		// (CreateMessageWithToolsResult); take the first text-bearing one.
		var res struct {
			Role       string          `json:"role"`
			Model      string          `json:"model"`
			StopReason string          `json:"stopReason"`
			Content    json.RawMessage `json:"content"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			return agents.Answer{}, err
		}
		blocks := []json.RawMessage{res.Content}
		if len(res.Content) > 0 && res.Content[0] == '[' {
			blocks = nil
			if err := json.Unmarshal(res.Content, &blocks); err != nil {
				return agents.Answer{}, err
			}
		}
		out := &agents.SampleResult{Role: res.Role, Model: res.Model, StopReason: res.StopReason, Content: agents.Content{Type: "text"}}
		for _, b := range blocks {
			var c agents.Content
			if err := json.Unmarshal(b, &c); err == nil && c.Type != "" {
				out.Content = c
				break
			}
		}
		return agents.Answer{Sample: out}, nil
	case in.Elicit != nil:
		var res mcp.ElicitResult
		if err := json.Unmarshal(raw, &res); err != nil {
			return agents.Answer{}, err
		}
		return agents.Answer{Elicit: &agents.ElicitResult{Action: res.Action, Content: res.Content}}, nil
	default:
		var res mcp.ListRootsResult
		if err := json.Unmarshal(raw, &res); err != nil {
			return agents.Answer{}, err
		}
		return agents.Answer{Roots: fromMCPRoots(res.Roots)}, nil
	}
}

func fromMCPRoots(roots []*mcp.Root) []agents.Root {
	out := make([]agents.Root, 0, len(roots))
	for _, r := range roots {
		if r != nil {
			out = append(out, agents.Root{URI: r.URI, Name: r.Name})
		}
	}
	return out
}

func (c *client) genKey() string {
	k := "in-" + strconv.Itoa(c.next)
	c.next++
	return k
}

func (c *client) Sample(ctx context.Context, req *agents.SampleRequest) (*agents.SampleResult, error) {
	key := c.genKey()
	a, err := c.Ask(ctx, map[string]agents.Input{key: {Sample: req}})
	if err != nil {
		return nil, err
	}
	return a[key].Sample, nil
}

func (c *client) Elicit(ctx context.Context, req *agents.ElicitRequest) (*agents.ElicitResult, error) {
	key := c.genKey()
	a, err := c.Ask(ctx, map[string]agents.Input{key: {Elicit: req}})
	if err != nil {
		return nil, err
	}
	return a[key].Elicit, nil
}

// inputRequests turns an agent's *InputRequired into the multi-round-trip
// fields that ask the client: the requests, and the signed answers so far.
func (c *client) inputRequests(ir *agents.InputRequired) (mcp.InputRequestMap, string, error) {
	reqs := make(mcp.InputRequestMap, len(ir.Inputs))
	for key, in := range ir.Inputs {
		switch {
		case in.Sample != nil:
			reqs[key] = sampleParams(in.Sample)
		case in.Elicit != nil:
			reqs[key] = elicitParams(in.Elicit)
		case in.ListRoots:
			reqs[key] = &mcp.ListRootsParams{}
		default:
			return nil, "", fmt.Errorf("input request %s sets no question", key)
		}
	}
	state, err := sealState(c.key, c.answers)
	if err != nil {
		return nil, "", err
	}
	return reqs, state, nil
}

// capabilityError turns a missing client capability into the SEP-2575
// protocol error for 2026-07-28 clients; other clients get a tool error.
func (c *client) capabilityError(err error) error {
	ce, ok := errors.AsType[*agents.CapabilityError](err)
	if !ok || !c.mrtr {
		return nil
	}
	need := &mcp.ClientCapabilities{}
	switch ce.Capability {
	case "sampling":
		need.Sampling = &mcp.SamplingCapabilities{}
	case "elicitation":
		need.Elicitation = &mcp.ElicitationCapabilities{}
	case "roots":
		need.RootsV2 = &mcp.RootCapabilities{}
	}
	data, _ := json.Marshal(mcp.MissingRequiredClientCapabilityData{RequiredCapabilities: need})
	return &jsonrpc.Error{Code: mcp.CodeMissingRequiredClientCapabilities, Message: ce.Error(), Data: data}
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
