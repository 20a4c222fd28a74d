package mcpkind

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"mcptower/agents"
	"mcptower/schemas"
)

// Tool is one upstream tool as an agent: a member of its Upstream's set.
// Invoking it calls the tool on the upstream, relaying progress, logs,
// sampling, elicitation and cancellation.
type Tool struct {
	up       *Upstream
	spec     agents.Spec
	upstream string // the tool's name on the upstream
	nameJSON []byte // upstream as a JSON string, for lean calls
	raw      []byte // the upstream's definition, to tell a changed tool
}

var _ agents.Agent = (*Tool)(nil)

// Spec returns the agent's spec (name, schemas and hints from the upstream).
func (t *Tool) Spec() *agents.Spec { return &t.spec }

// UpstreamName returns the tool's name on the upstream server.
func (t *Tool) UpstreamName() string { return t.upstream }

// Invoke calls the tool on the upstream.
func (t *Tool) Invoke(ctx context.Context, call *agents.Call) (*agents.Result, error) {
	return t.up.callTool(ctx, call, t)
}

var anyObject = mustParse(`{"type":"object"}`)

func mustParse(s string) *schemas.Schema {
	sc, err := schemas.Parse([]byte(s))
	if err != nil {
		panic(err)
	}
	return sc
}

// newTool builds the member agent for upstream tool t, named name.
func (u *Upstream) newTool(t *mcp.Tool, name string, raw []byte) *Tool {
	spec := agents.Spec{
		Name:        name,
		Version:     u.spec.Version,
		Title:       t.Title,
		Description: t.Description,
		Kind:        Kind,
		Tags:        slices.Clone(u.def.Tags),
		Metadata:    maps.Clone(u.def.Metadata),
		Timeout:     u.def.Timeout,
		Input:       u.schema(t.Name, "input", t.InputSchema),
	}
	if spec.Metadata == nil {
		spec.Metadata = map[string]string{}
	}
	spec.Metadata[MetaUpstream] = u.spec.Name
	spec.Metadata[MetaUpstreamTool] = t.Name
	if t.OutputSchema != nil {
		spec.Output = u.schema(t.Name, "output", t.OutputSchema)
	}
	if a := t.Annotations; a != nil {
		if spec.Title == "" {
			spec.Title = a.Title
		}
		spec.Hints = agents.Hints{
			ReadOnly:    a.ReadOnlyHint,
			Destructive: a.DestructiveHint,
			Idempotent:  a.IdempotentHint,
			OpenWorld:   a.OpenWorldHint,
		}
	}
	return &Tool{up: u, spec: spec, upstream: t.Name, nameJSON: appendJSON(nil, t.Name), raw: raw}
}

// Metadata keys set on every member agent.
const (
	// MetaUpstream is the name of the upstream (the definition's name).
	MetaUpstream = "upstream"
	// MetaUpstreamTool is the tool's name on the upstream.
	MetaUpstreamTool = "upstream_tool"
)

// schema compiles an upstream schema. One that does not compile, or does not
// describe an object, becomes {"type":"object"}: the tool stays usable, the
// upstream still validates its own input, and output is not validated
// against a schema mcptower could not read.
func (u *Upstream) schema(tool, which string, v any) *schemas.Schema {
	raw, err := json.Marshal(v)
	if err == nil {
		var sc *schemas.Schema
		if sc, err = schemas.Parse(raw); err == nil {
			if sc.IsObject() {
				return sc
			}
			err = fmt.Errorf("it does not describe an object")
		}
	}
	u.logger.Warn("upstream tool schema not usable; using {\"type\":\"object\"}", "tool", tool, "schema", which, "error", err)
	return anyObject
}

// memberName maps an upstream tool name to an agent name: prefix+tool when
// that is a valid name (1-128 of [A-Za-z0-9_.-]); otherwise the invalid
// characters become '_', the name is cut to fit, and "-" plus 8 hex digits
// of the tool name's SHA-256 are appended, which keeps distinct tools
// distinct and the name stable across restarts.
func memberName(prefix, tool string) string {
	name := prefix + tool
	if agents.ValidName(name) == nil {
		return name
	}
	return hashedName(prefix, tool)
}

func hashedName(prefix, tool string) string {
	sum := sha256.Sum256([]byte(tool))
	suffix := "-" + hex.EncodeToString(sum[:4])
	var b strings.Builder
	for _, r := range prefix + tool {
		if r < 0x80 && validRune(byte(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	clean := b.String()
	if len(clean) > 128-len(suffix) {
		clean = clean[:128-len(suffix)]
	}
	return clean + suffix
}

func validRune(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

// resultFrom converts an upstream tool result.
func resultFrom(r *mcp.CallToolResult) (*agents.Result, error) {
	out := &agents.Result{IsError: r.IsError}
	if r.StructuredContent != nil {
		raw, err := json.Marshal(r.StructuredContent)
		if err != nil {
			return nil, fmt.Errorf("encode structured content: %w", err)
		}
		out.Output = raw
	}
	out.Content = make([]agents.Content, 0, len(r.Content))
	for _, c := range r.Content {
		out.Content = append(out.Content, contentFrom(c))
	}
	return out, nil
}

func contentFrom(c mcp.Content) agents.Content {
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
	// A content type mcptower does not model: keep it readable.
	raw, _ := json.Marshal(c)
	return agents.Text(string(raw))
}

func contentTo(c *agents.Content) mcp.Content {
	switch c.Type {
	case "image":
		return &mcp.ImageContent{Data: c.Data, MIMEType: c.MIMEType}
	case "audio":
		return &mcp.AudioContent{Data: c.Data, MIMEType: c.MIMEType}
	case "resource_link":
		return &mcp.ResourceLink{URI: c.URI, Name: c.Name, MIMEType: c.MIMEType}
	case "resource":
		rc := &mcp.ResourceContents{URI: c.URI, MIMEType: c.MIMEType, Text: c.Text}
		if c.Data != nil {
			rc.Text, rc.Blob = "", c.Data
		}
		return &mcp.EmbeddedResource{Resource: rc}
	default:
		return &mcp.TextContent{Text: c.Text}
	}
}
