// Command conformance serves every fixture the official MCP conformance
// suite (@modelcontextprotocol/conformance) calls, built only on mcptower's
// public API and the same HTTP handler and defaults as `mcptower serve`:
// 2025-11-25 sessions and 2026-07-28 stateless requests at one URL.
//
//	go run ./examples/conformance -http 127.0.0.1:8095
//	npx @modelcontextprotocol/conformance@0.1.16 server --url http://127.0.0.1:8095/mcp --suite all
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"mcptower/agents"
	"mcptower/contextstore"
	"mcptower/contextstore/memory"
	"mcptower/schemas"
	"mcptower/server"
	"mcptower/tools"
)

const (
	watchedURI = "test://watched-resource"
	pngBase64  = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
	wavBase64  = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="
)

func decode(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

var (
	pngData = decode(pngBase64)
	wavData = decode(wavBase64)
)

// text is a Result with one text block.
func text(format string, args ...any) *agents.Result {
	return &agents.Result{Content: []agents.Content{agents.Text(fmt.Sprintf(format, args...))}}
}

// fixture is a content-returning agent (no structured output).
type fixture struct {
	name, description string
	input             string // raw JSON Schema; "" = any object
	fn                agents.FuncAgent
}

func (f fixture) build() (agents.Agent, error) {
	spec := agents.Spec{Name: f.name, Description: f.description}
	if f.input != "" {
		in, err := schemas.Parse([]byte(f.input))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		spec.Input = in
	}
	return agents.Func(spec, f.fn)
}

func args(call *agents.Call) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(call.Args, &m)
	return m
}

const nameSchema = `{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`

func acceptedContent(a agents.Answer) map[string]any {
	if a.Elicit == nil || a.Elicit.Action != "accept" {
		return nil
	}
	return a.Elicit.Content
}

// fixtures returns the tools. srv is needed by the two that change lists.
func fixtures(srv **server.Server) []fixture {
	return []fixture{
		{"test_simple_text", "Returns simple text content", "", func(context.Context, *agents.Call) (*agents.Result, error) {
			return text("This is a simple text response for testing."), nil
		}},
		{"test_image_content", "Returns image content", "", func(context.Context, *agents.Call) (*agents.Result, error) {
			return &agents.Result{Content: []agents.Content{{Type: "image", Data: pngData, MIMEType: "image/png"}}}, nil
		}},
		{"test_audio_content", "Returns audio content", "", func(context.Context, *agents.Call) (*agents.Result, error) {
			return &agents.Result{Content: []agents.Content{{Type: "audio", Data: wavData, MIMEType: "audio/wav"}}}, nil
		}},
		{"test_embedded_resource", "Returns an embedded resource", "", func(context.Context, *agents.Call) (*agents.Result, error) {
			return &agents.Result{Content: []agents.Content{{Type: "resource", URI: "test://embedded-resource", MIMEType: "text/plain", Text: "This is an embedded resource"}}}, nil
		}},
		{"test_multiple_content_types", "Returns text, image and resource content", "", func(context.Context, *agents.Call) (*agents.Result, error) {
			return &agents.Result{Content: []agents.Content{
				agents.Text("This is text content"),
				{Type: "image", Data: pngData, MIMEType: "image/png"},
				{Type: "resource", URI: "test://embedded-in-multiple", MIMEType: "text/plain", Text: "This is an embedded resource"},
			}}, nil
		}},
		{"test_tool_with_logging", "Sends log messages while running", "", func(ctx context.Context, call *agents.Call) (*agents.Result, error) {
			for _, m := range []string{"Tool execution started", "Tool processing data", "Tool execution completed"} {
				_ = call.Client.Log(ctx, 0, "", m)
				time.Sleep(50 * time.Millisecond)
			}
			return text("Tool with logging executed successfully"), nil
		}},
		{"test_tool_with_progress", "Reports progress while running", "", func(ctx context.Context, call *agents.Call) (*agents.Result, error) {
			for _, p := range []float64{0, 50, 100} {
				_ = call.Client.Progress(ctx, p, 100, fmt.Sprintf("Completed step %.0f of 100", p))
				time.Sleep(50 * time.Millisecond)
			}
			return text("Progress reported"), nil
		}},
		{"test_error_handling", "Always fails", "", func(context.Context, *agents.Call) (*agents.Result, error) {
			return nil, errors.New("this tool intentionally returns an error for testing")
		}},
		{"test_sampling", "Asks the client's model", `{"type":"object","properties":{"prompt":{"type":"string"}},"required":["prompt"]}`, func(ctx context.Context, call *agents.Call) (*agents.Result, error) {
			prompt, _ := args(call)["prompt"].(string)
			res, err := call.Client.Sample(ctx, &agents.SampleRequest{Messages: []agents.Message{{Role: "user", Content: agents.Text(prompt)}}, MaxTokens: 100})
			if err != nil {
				return nil, err
			}
			return text("LLM response: %s", res.Content.Text), nil
		}},
		{"test_elicitation", "Asks the user for a username", `{"type":"object","properties":{"message":{"type":"string"}},"required":["message"]}`, func(ctx context.Context, call *agents.Call) (*agents.Result, error) {
			msg, _ := args(call)["message"].(string)
			res, err := call.Client.Elicit(ctx, &agents.ElicitRequest{Message: msg, Schema: json.RawMessage(`{"type":"object","properties":{"username":{"type":"string","description":"Your preferred username"}},"required":["username"]}`)})
			if err != nil {
				return nil, err
			}
			return text("Elicitation result: action=%s, content=%v", res.Action, res.Content), nil
		}},
		{"test_elicitation_sep1034_defaults", "Elicitation with default values (SEP-1034)", "", elicitWith("Test defaults for primitives", `{"type":"object","properties":{
			"name":{"type":"string","description":"User name","default":"John Doe"},
			"age":{"type":"integer","description":"User age","default":30},
			"score":{"type":"number","description":"User score","default":95.5},
			"status":{"type":"string","description":"User status","enum":["active","inactive","pending"],"default":"active"},
			"verified":{"type":"boolean","description":"Verification status","default":true}}}`)},
		{"test_elicitation_sep1330_enums", "Elicitation with enum schemas (SEP-1330)", "", elicitWith("Test enum schemas", `{"type":"object","properties":{
			"untitledSingle":{"type":"string","enum":["option1","option2","option3"]},
			"titledSingle":{"type":"string","oneOf":[{"const":"value1","title":"First Option"},{"const":"value2","title":"Second Option"},{"const":"value3","title":"Third Option"}]},
			"legacyEnum":{"type":"string","enum":["opt1","opt2","opt3"],"enumNames":["Option One","Option Two","Option Three"]},
			"untitledMulti":{"type":"array","minItems":1,"maxItems":3,"items":{"type":"string","enum":["option1","option2","option3"]}},
			"titledMulti":{"type":"array","minItems":1,"maxItems":3,"items":{"type":"string","anyOf":[{"const":"value1","title":"First Option"},{"const":"value2","title":"Second Option"},{"const":"value3","title":"Third Option"}]}}}}`)},
		{"json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features (SEP-1613, SEP-2106)", `{
			"$schema": "https://json-schema.org/draft/2020-12/schema",
			"type": "object",
			"$defs": {"address": {"$anchor": "addressDef", "type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
			"properties": {
				"name": {"type": "string"},
				"address": {"$ref": "#/$defs/address"},
				"contactMethod": {"type": "string", "enum": ["phone", "email"]},
				"phone": {"type": "string"},
				"email": {"type": "string"}
			},
			"allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
			"if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
			"then": {"required": ["phone"]},
			"else": {"required": ["email"]},
			"additionalProperties": false
		}`, func(_ context.Context, call *agents.Call) (*agents.Result, error) {
			return text("JSON Schema 2020-12 tool called with: %s", call.Args), nil
		}},
		{"test_reconnection", "Closes the SSE stream mid-call; the client reconnects for the result (SEP-1699)", "", func(ctx context.Context, call *agents.Call) (*agents.Result, error) {
			call.Client.CloseStream(10 * time.Millisecond)
			time.Sleep(100 * time.Millisecond)
			return text("Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure."), nil
		}},
		{"test_x_mcp_header", "Tests SEP-2243 Mcp-Param-* server-side validation", `{"type":"object","properties":{
			"region":{"type":"string","description":"mirrored into Mcp-Param-Region","x-mcp-header":"Region"},
			"level":{"type":"integer","description":"non-mirrored argument"}}}`, func(_ context.Context, call *agents.Call) (*agents.Result, error) {
			region, _ := args(call)["region"].(string)
			return text("region=%s", region), nil
		}},
		{"test_missing_capability", "Requires the sampling client capability (SEP-2575)", "", func(context.Context, *agents.Call) (*agents.Result, error) {
			return nil, nil // replaced below: needs the client
		}},
		{"test_streaming_elicitation", "Returns a plain result: response streams carry no independent requests (SEP-2575)", "", func(context.Context, *agents.Call) (*agents.Result, error) {
			return text("stream observed: result frames only, no top-level requests"), nil
		}},
		{"test_logging_tool", "Attempts to log; dropped unless the client set a log level (SEP-2575)", "", func(ctx context.Context, call *agents.Call) (*agents.Result, error) {
			_ = call.Client.Log(ctx, 0, "", "test_logging_tool executed")
			return text("Log attempted; the framework gates on the requested log level."), nil
		}},
		{"test_trigger_tool_change", "Changes the tool list (tools/list_changed)", "", func(_ context.Context, call *agents.Call) (*agents.Result, error) {
			transient, err := agents.Func(agents.Spec{Name: "__transient_tool_for_list_changed", Description: "Transient tool used to trigger tools/list_changed"},
				func(context.Context, *agents.Call) (*agents.Result, error) { return &agents.Result{}, nil })
			if err != nil {
				return nil, err
			}
			if err := call.Registry.Put(transient); err != nil {
				return nil, err
			}
			return text("tools_list_changed published"), nil
		}},
		{"test_trigger_prompt_change", "Changes the prompt list (prompts/list_changed)", "", func(context.Context, *agents.Call) (*agents.Result, error) {
			(*srv).AddPrompt(server.Prompt{Name: "__transient_prompt_for_list_changed", Description: "Transient prompt used to trigger prompts/list_changed",
				Get: func(context.Context, *server.PromptRequest) (*server.PromptResult, error) {
					return &server.PromptResult{}, nil
				}})
			return text("prompts_list_changed published"), nil
		}},
		{"test_input_required_result_elicitation", "MRTR (SEP-2322): asks for the caller's name", "", func(ctx context.Context, call *agents.Call) (*agents.Result, error) {
			a, err := call.Client.Ask(ctx, map[string]agents.Input{"user_name": {Elicit: &agents.ElicitRequest{Message: "What is your name?", Schema: json.RawMessage(nameSchema)}}})
			if err != nil {
				return nil, err
			}
			name, _ := acceptedContent(a["user_name"])["name"].(string)
			return text("Hello, %s!", name), nil
		}},
		{"test_input_required_result_sampling", "MRTR (SEP-2322): asks for an LLM completion", "", func(ctx context.Context, call *agents.Call) (*agents.Result, error) {
			a, err := call.Client.Ask(ctx, map[string]agents.Input{"capital_question": {Sample: &agents.SampleRequest{Messages: []agents.Message{{Role: "user", Content: agents.Text("What is the capital of France?")}}, MaxTokens: 100}}})
			if err != nil {
				return nil, err
			}
			return text("Sampling response: %s", a["capital_question"].Sample.Content.Text), nil
		}},
		{"test_input_required_result_list_roots", "MRTR (SEP-2322): asks for the client's roots", "", func(ctx context.Context, call *agents.Call) (*agents.Result, error) {
			a, err := call.Client.Ask(ctx, map[string]agents.Input{"client_roots": {ListRoots: true}})
			if err != nil {
				return nil, err
			}
			roots := a["client_roots"].Roots
			uris := make([]string, len(roots))
			for i, r := range roots {
				uris[i] = r.URI
			}
			return text("Client exposed %d root(s): %s", len(roots), strings.Join(uris, ", ")), nil
		}},
		{"test_input_required_result_request_state", "MRTR (SEP-2322): integrity-protected requestState with an elicitation", "", confirm},
		{"test_input_required_result_tampered_state", "MRTR (SEP-2322): rejects a retry whose requestState was altered", "", confirm},
		{"test_input_required_result_multiple_inputs", "MRTR (SEP-2322): elicitation, sampling and roots in one round", "", func(ctx context.Context, call *agents.Call) (*agents.Result, error) {
			a, err := call.Client.Ask(ctx, map[string]agents.Input{
				"user_name":    {Elicit: &agents.ElicitRequest{Message: "What is your name?", Schema: json.RawMessage(nameSchema)}},
				"greeting":     {Sample: &agents.SampleRequest{Messages: []agents.Message{{Role: "user", Content: agents.Text("Generate a greeting")}}, MaxTokens: 50}},
				"client_roots": {ListRoots: true},
			})
			if err != nil {
				return nil, err
			}
			name, _ := acceptedContent(a["user_name"])["name"].(string)
			return text("%s %s — %d root(s) visible", a["greeting"].Sample.Content.Text, name, len(a["client_roots"].Roots)), nil
		}},
		{"test_input_required_result_multi_round", "MRTR (SEP-2322): two elicitation rounds", "", func(ctx context.Context, call *agents.Call) (*agents.Result, error) {
			a, err := call.Client.Ask(ctx, map[string]agents.Input{"step1": {Elicit: &agents.ElicitRequest{Message: "Step 1: What is your name?", Schema: json.RawMessage(nameSchema)}}})
			if err != nil {
				return nil, err
			}
			name, _ := acceptedContent(a["step1"])["name"].(string)
			b, err := call.Client.Ask(ctx, map[string]agents.Input{"step2": {Elicit: &agents.ElicitRequest{Message: "Step 2: What is your favorite color?", Schema: json.RawMessage(`{"type":"object","properties":{"color":{"type":"string"}},"required":["color"]}`)}}})
			if err != nil {
				return nil, err
			}
			color, _ := acceptedContent(b["step2"])["color"].(string)
			return text("Multi-round complete: %s likes %s", cmpOr(name, "unknown"), cmpOr(color, "unknown")), nil
		}},
		{"test_input_required_result_capabilities", "MRTR (SEP-2322): asks only for what the client's capabilities cover", "", func(ctx context.Context, call *agents.Call) (*agents.Result, error) {
			inputs := map[string]agents.Input{}
			if call.Client.Supports("elicitation") {
				inputs["user_name"] = agents.Input{Elicit: &agents.ElicitRequest{Message: "What is your name?", Schema: json.RawMessage(nameSchema)}}
			}
			if call.Client.Supports("sampling") {
				inputs["greeting"] = agents.Input{Sample: &agents.SampleRequest{Messages: []agents.Message{{Role: "user", Content: agents.Text("Generate a short greeting")}}, MaxTokens: 50}}
			}
			if call.Client.Supports("roots") {
				inputs["client_roots"] = agents.Input{ListRoots: true}
			}
			if len(inputs) == 0 {
				return text("No declared client capability supports an in-band input request"), nil
			}
			if _, err := call.Client.Ask(ctx, inputs); err != nil {
				return nil, err
			}
			return text("Capability-aware input requests fulfilled"), nil
		}},
	}
}

func confirm(ctx context.Context, call *agents.Call) (*agents.Result, error) {
	a, err := call.Client.Ask(ctx, map[string]agents.Input{"confirm": {Elicit: &agents.ElicitRequest{Message: "Please confirm", Schema: json.RawMessage(`{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]}`)}}})
	if err != nil {
		return nil, err
	}
	_ = a
	return text("state-ok: requestState received and confirmation accepted"), nil
}

func elicitWith(message, schema string) agents.FuncAgent {
	return func(ctx context.Context, call *agents.Call) (*agents.Result, error) {
		res, err := call.Client.Elicit(ctx, &agents.ElicitRequest{Message: message, Schema: json.RawMessage(schema)})
		if err != nil {
			return nil, err
		}
		return text("Elicitation result: action=%s, content=%v", res.Action, res.Content), nil
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// missingCapability needs the sampling capability: without it the server
// answers a 2026 client with -32021 (the client's Ask fails with a
// CapabilityError, which the agent returns).
func missingCapability(ctx context.Context, call *agents.Call) (*agents.Result, error) {
	if !call.Client.Supports("sampling") {
		return nil, &agents.CapabilityError{Capability: "sampling"}
	}
	return text("Client declared the sampling capability; tool executed."), nil
}

var templateID = regexp.MustCompile(`^test://template/([^/]+)/data$`)

// New builds the conformance server over store.
func New(store contextstore.Store) (*server.Server, error) {
	reg := agents.NewRegistry()
	var srv *server.Server
	for _, f := range fixtures(&srv) {
		if f.name == "test_missing_capability" {
			f.fn = missingCapability
		}
		a, err := f.build()
		if err != nil {
			return nil, err
		}
		if err := reg.Add(a); err != nil {
			return nil, err
		}
	}
	for _, a := range tools.Defaults() {
		if err := reg.Add(a); err != nil {
			return nil, err
		}
	}
	srv = server.New(&agents.Engine{Registry: reg, Store: store}, &server.Options{
		Version: "1.0.0",
		Complete: func(context.Context, *server.CompleteRequest) (*server.CompleteResult, error) {
			return &server.CompleteResult{}, nil
		},
	})
	addResources(srv)
	addPrompts(srv)
	return srv, nil
}

func addResources(srv *server.Server) {
	srv.AddResource(server.Resource{URI: "test://static-text", Name: "static-text", Description: "A static text resource", MIMEType: "text/plain",
		Read: func(context.Context, string) ([]server.ResourceContents, error) {
			return []server.ResourceContents{{MIMEType: "text/plain", Text: "This is the content of the static text resource."}}, nil
		}})
	srv.AddResource(server.Resource{URI: "test://static-binary", Name: "static-binary", Description: "A static binary resource", MIMEType: "image/png",
		Read: func(context.Context, string) ([]server.ResourceContents, error) {
			return []server.ResourceContents{{MIMEType: "image/png", Blob: pngData}}, nil
		}})
	srv.AddResourceTemplate(server.ResourceTemplate{URITemplate: "test://template/{id}/data", Name: "template", Description: "A resource template", MIMEType: "application/json",
		Read: func(_ context.Context, uri string) ([]server.ResourceContents, error) {
			m := templateID.FindStringSubmatch(uri)
			if m == nil {
				return nil, agents.Errorf(agents.CodeNotFound, "no resource %s", uri)
			}
			return []server.ResourceContents{{MIMEType: "application/json", Text: fmt.Sprintf(`{"id":%q,"templateTest":true,"data":"Data for ID: %s"}`, m[1], m[1])}}, nil
		}})
	srv.AddResource(server.Resource{URI: watchedURI, Name: "watched-resource", Description: "A resource that changes every 3 seconds", MIMEType: "text/plain",
		Read: func(context.Context, string) ([]server.ResourceContents, error) {
			return []server.ResourceContents{{MIMEType: "text/plain", Text: "Watched resource content at " + time.Now().Format(time.RFC3339)}}, nil
		}})
}

func addPrompts(srv *server.Server) {
	msg := func(role, s string) agents.Message { return agents.Message{Role: role, Content: agents.Text(s)} }
	srv.AddPrompt(server.Prompt{Name: "test_simple_prompt", Title: "Simple Test Prompt", Description: "A simple prompt without arguments",
		Get: func(context.Context, *server.PromptRequest) (*server.PromptResult, error) {
			return &server.PromptResult{Description: "A simple test prompt", Messages: []agents.Message{msg("user", "This is a simple prompt for testing.")}}, nil
		}})
	srv.AddPrompt(server.Prompt{Name: "test_prompt_with_arguments", Title: "Prompt With Arguments", Description: "A prompt with required arguments",
		Arguments: []server.PromptArgument{{Name: "arg1", Description: "First test argument", Required: true}, {Name: "arg2", Description: "Second test argument", Required: true}},
		Get: func(_ context.Context, req *server.PromptRequest) (*server.PromptResult, error) {
			return &server.PromptResult{Description: "A prompt with arguments", Messages: []agents.Message{msg("user", fmt.Sprintf("Prompt with arguments: arg1='%s', arg2='%s'", req.Args["arg1"], req.Args["arg2"]))}}, nil
		}})
	srv.AddPrompt(server.Prompt{Name: "test_prompt_with_embedded_resource", Title: "Prompt With Embedded Resource", Description: "A prompt that includes an embedded resource",
		Arguments: []server.PromptArgument{{Name: "resourceUri", Description: "URI of the resource to embed", Required: true}},
		Get: func(_ context.Context, req *server.PromptRequest) (*server.PromptResult, error) {
			return &server.PromptResult{Description: "A prompt with an embedded resource", Messages: []agents.Message{
				{Role: "user", Content: agents.Content{Type: "resource", URI: req.Args["resourceUri"], MIMEType: "text/plain", Text: "Embedded resource content for testing."}},
				msg("user", "Please process the embedded resource above."),
			}}, nil
		}})
	srv.AddPrompt(server.Prompt{Name: "test_prompt_with_image", Title: "Prompt With Image", Description: "A prompt that includes image content",
		Get: func(context.Context, *server.PromptRequest) (*server.PromptResult, error) {
			return &server.PromptResult{Description: "A prompt with an image", Messages: []agents.Message{
				{Role: "user", Content: agents.Content{Type: "image", Data: pngData, MIMEType: "image/png"}},
				msg("user", "Please analyze the image above."),
			}}, nil
		}})
	srv.AddPrompt(server.Prompt{Name: "test_input_required_result_prompt", Description: "MRTR (SEP-2322): asks for context via elicitation",
		Get: func(ctx context.Context, req *server.PromptRequest) (*server.PromptResult, error) {
			a, err := req.Client.Ask(ctx, map[string]agents.Input{"user_context": {Elicit: &agents.ElicitRequest{Message: "Please provide context for the prompt", Schema: json.RawMessage(`{"type":"object","properties":{"context":{"type":"string"}},"required":["context"]}`)}}})
			if err != nil {
				return nil, err
			}
			c, _ := acceptedContent(a["user_context"])["context"].(string)
			return &server.PromptResult{Description: "A prompt with elicited context", Messages: []agents.Message{msg("user", "Context: "+c)}}, nil
		}})
}

// watch notifies subscribers of the watched resource every 3 seconds.
func watch(ctx context.Context, srv *server.Server) {
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = srv.ResourceUpdated(ctx, watchedURI)
		}
	}
}

func main() {
	addr := flag.String("http", "127.0.0.1:8095", "listen address (port 0 picks one; the URL is printed on stdout)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	store := memory.New(contextstore.Options{})
	defer store.Close()
	srv, err := New(store)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	go watch(ctx, srv)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("http://%s/mcp\n", ln.Addr())
	hs := &http.Server{Handler: srv.Handler()}
	go func() {
		<-ctx.Done()
		srv.CloseSessions()
		_ = hs.Shutdown(context.Background())
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
