package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"mcptower/agents"
	"mcptower/internal/errs"
)

// Resource is a resource at a fixed URI, served by a Go function.
type Resource struct {
	URI         string
	Name        string
	Title       string
	Description string
	MIMEType    string
	// Read returns the resource's contents for uri.
	Read func(ctx context.Context, uri string) ([]ResourceContents, error)
}

// ResourceTemplate is a family of resources matching an RFC 6570 URI
// template, such as "docs://{name}".
type ResourceTemplate struct {
	URITemplate string
	Name        string
	Title       string
	Description string
	MIMEType    string
	// Read returns the contents for a uri matching the template. An
	// errs.NotFound error (agents.Errorf(agents.CodeNotFound, ...)) becomes
	// the MCP "resource not found" error.
	Read func(ctx context.Context, uri string) ([]ResourceContents, error)
}

// ResourceContents is one part of a resource: Text or Blob.
type ResourceContents struct {
	URI      string
	MIMEType string
	Text     string
	Blob     []byte
}

// AddResource publishes r. Clients may subscribe to it; call
// ResourceUpdated when it changes.
func (s *Server) AddResource(r Resource) {
	s.watches.allow(r.URI)
	s.mcp.AddResource(&mcp.Resource{URI: r.URI, Name: r.Name, Title: r.Title, Description: r.Description, MIMEType: r.MIMEType},
		func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return readResult(ctx, req.Params.URI, r.Read)
		})
}

// AddResourceTemplate publishes t.
func (s *Server) AddResourceTemplate(t ResourceTemplate) {
	s.mcp.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: t.URITemplate, Name: t.Name, Title: t.Title, Description: t.Description, MIMEType: t.MIMEType},
		func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return readResult(ctx, req.Params.URI, t.Read)
		})
}

// ResourceUpdated notifies the clients subscribed to uri that it changed.
func (s *Server) ResourceUpdated(ctx context.Context, uri string) error {
	return s.mcp.ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: uri})
}

func readResult(ctx context.Context, uri string, read func(context.Context, string) ([]ResourceContents, error)) (*mcp.ReadResourceResult, error) {
	parts, err := read(ctx, uri)
	if err != nil {
		if errs.Is(err, errs.NotFound) {
			return nil, mcp.ResourceNotFoundError(uri)
		}
		return nil, rpcError(err)
	}
	res := &mcp.ReadResourceResult{Contents: make([]*mcp.ResourceContents, len(parts))}
	for i, p := range parts {
		res.Contents[i] = &mcp.ResourceContents{URI: p.URI, MIMEType: p.MIMEType, Text: p.Text, Blob: p.Blob}
		if res.Contents[i].URI == "" {
			res.Contents[i].URI = uri
		}
	}
	return res, nil
}

// Prompt is a prompt template clients can list and fill (MCP prompts).
type Prompt struct {
	Name        string
	Title       string
	Description string
	Arguments   []PromptArgument
	// Get fills the prompt. It may ask the client for input through
	// req.Client (returning an *agents.InputRequired unchanged, as agents do).
	Get func(ctx context.Context, req *PromptRequest) (*PromptResult, error)
}

// PromptArgument is one argument of a Prompt.
type PromptArgument struct {
	Name        string
	Title       string
	Description string
	Required    bool
}

// PromptRequest is one prompts/get.
type PromptRequest struct {
	Name   string
	Args   map[string]string
	Client agents.Client
}

// PromptResult is a filled prompt.
type PromptResult struct {
	Description string
	Messages    []agents.Message
}

// AddPrompt publishes p, replacing a prompt of the same name; clients get
// notifications/prompts/list_changed.
func (s *Server) AddPrompt(p Prompt) {
	mp := &mcp.Prompt{Name: p.Name, Title: p.Title, Description: p.Description}
	for _, a := range p.Arguments {
		mp.Arguments = append(mp.Arguments, &mcp.PromptArgument{Name: a.Name, Title: a.Title, Description: a.Description, Required: a.Required})
	}
	s.mcp.AddPrompt(mp, func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		for _, a := range p.Arguments {
			if _, ok := req.Params.Arguments[a.Name]; a.Required && !ok {
				return nil, rpcError(errs.E(errs.Invalid, "prompt %s: missing required argument %q", p.Name, a.Name))
			}
		}
		c, err := newClient(req.Session, req.ClientCapabilities(), req.Extra, s.stateKey,
			inputParams{token: req.Params.GetProgressToken(), responses: req.Params.InputResponses, state: req.Params.RequestState})
		if err != nil {
			return nil, err
		}
		res, err := p.Get(ctx, &PromptRequest{Name: p.Name, Args: req.Params.Arguments, Client: c})
		if ir, ok := errors.AsType[*agents.InputRequired](err); ok {
			reqs, state, err := c.inputRequests(ir)
			if err != nil {
				return nil, err
			}
			return &mcp.GetPromptResult{InputRequests: reqs, RequestState: state}, nil
		}
		if perr := c.capabilityError(err); perr != nil {
			return nil, perr
		}
		if err != nil {
			return nil, rpcError(err)
		}
		out := &mcp.GetPromptResult{Description: res.Description, Messages: make([]*mcp.PromptMessage, len(res.Messages))}
		for i := range res.Messages {
			out.Messages[i] = &mcp.PromptMessage{Role: mcp.Role(res.Messages[i].Role), Content: toMCPContent(&res.Messages[i].Content)}
		}
		return out, nil
	})
}

// RemovePrompt withdraws a prompt.
func (s *Server) RemovePrompt(name string) { s.mcp.RemovePrompts(name) }

// CompleteRequest asks for completions of one argument of a prompt or a
// resource template.
type CompleteRequest struct {
	// Ref is "ref/prompt" or "ref/resource".
	Ref string
	// Name is the prompt's name (ref/prompt); URI the template (ref/resource).
	Name, URI string
	// Argument is the argument being completed, Value what was typed so far.
	Argument, Value string
	// Context holds the values of arguments already filled in.
	Context map[string]string
}

// CompleteResult are the suggestions, best first.
type CompleteResult struct {
	Values  []string
	Total   int
	HasMore bool
}

func (s *Server) complete(ctx context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
	p := req.Params
	cr := &CompleteRequest{Argument: p.Argument.Name, Value: p.Argument.Value}
	if p.Ref != nil {
		cr.Ref, cr.Name, cr.URI = p.Ref.Type, p.Ref.Name, p.Ref.URI
	}
	if p.Context != nil {
		cr.Context = p.Context.Arguments
	}
	res, err := s.opts.Complete(ctx, cr)
	if err != nil {
		return nil, rpcError(err)
	}
	if res == nil {
		res = &CompleteResult{}
	}
	values := res.Values
	if values == nil {
		values = []string{}
	}
	if len(values) > 100 { // the spec's maximum per response
		return nil, rpcError(fmt.Errorf("completion returned %d values; at most 100 are allowed", len(values)))
	}
	return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: values, Total: res.Total, HasMore: res.HasMore}}, nil
}
