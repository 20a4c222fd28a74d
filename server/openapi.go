package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"

	"mcptower/schemas"
)

// healthStatus is the body of /healthz and /readyz (for the document: the
// handlers write the same fields).
type healthStatus struct {
	Status string `json:"status" jsonschema:"enum=ok,enum=ready,enum=unavailable"`
	Error  string `json:"error,omitempty"`
}

// apiOperation is one operation of the OpenAPI document.
type apiOperation struct {
	method, path string
	id, tag      string
	summary      string
	description  string
	params       []apiParam
	request      reflect.Type   // JSON body; nil for none
	requestAny   map[string]any // or a JSON body of this schema
	ok           apiResponse
	errors       []int // documented problem statuses
}

type apiParam struct {
	name, in, description string
	required              bool
	schema                map[string]any
	array                 bool // repeatable query parameter
}

type apiResponse struct {
	status      int
	description string
	body        reflect.Type // JSON body; nil for none
	contentType string       // default application/json
	schema      map[string]any
	headers     map[string]any
}

var (
	stringSchema = map[string]any{"type": "string"}
	countSchema  = map[string]any{"type": "integer", "minimum": 0}
)

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

// apiOperations describe every route the HTTP handler serves. A test checks
// them against the mux, both ways.
var apiOperations = []apiOperation{
	{method: "post", path: "/v1/invoke", id: "invoke", tag: "invoke",
		summary:     "Invoke an agent",
		description: "Runs the agent through the same pipeline as an MCP tools/call: input validated against the agent's schema, timeout, output validated, the call recorded in the session's context. An agent that answers but reports a failure gives 200 with is_error.",
		request:     typeOf[InvokeRequest](),
		ok:          apiResponse{status: 200, description: "The agent's result.", body: typeOf[InvokeResponse]()},
		errors:      []int{400, 404, 413, 415, 422, 500, 503, 504}},
	{method: "post", path: "/invoke", id: "invokeCompat", tag: "invoke",
		summary:     "Invoke an agent with a prompt (seed API)",
		description: "Compatibility with the seed's API: the agent gets the input {\"prompt\": prompt}. response is the output's only field when the output is an object with a single string field; else the text content blocks, joined by newlines; else the output as JSON text.",
		request:     typeOf[CompatInvokeRequest](),
		ok:          apiResponse{status: 200, description: "The agent's answer as text.", body: typeOf[CompatInvokeResponse]()},
		errors:      []int{400, 404, 413, 415, 422, 500, 503, 504}},
	{method: "get", path: "/v1/history/{session_id}", id: "history", tag: "context",
		summary:     "Read a session's context",
		description: "The newest entries of the session (or those before a sequence number), oldest first.",
		params: []apiParam{
			{name: "session_id", in: "path", required: true, schema: stringSchema, description: "The context session."},
			{name: "limit", in: "query", schema: map[string]any{"type": "integer", "minimum": 0, "maximum": 1000}, description: "Maximum entries (default 100)."},
			{name: "before", in: "query", schema: countSchema, description: "Only entries with a lower sequence number: next_before of the previous page."},
		},
		ok:     apiResponse{status: 200, description: "A page of entries.", body: typeOf[HistoryResponse]()},
		errors: []int{400, 404, 503}},
	{method: "get", path: "/v1/sessions", id: "sessions", tag: "context",
		summary: "List sessions",
		params: []apiParam{
			{name: "tag", in: "query", array: true, schema: stringSchema, description: "key:value the session's tags must contain; repeatable."},
			{name: "limit", in: "query", schema: map[string]any{"type": "integer", "minimum": 0, "maximum": 1000}, description: "Maximum sessions (default 100)."},
			{name: "updated_before", in: "query", schema: map[string]any{"type": "string", "format": "date-time"}, description: "Only sessions updated before this time: next_updated_before of the previous page."},
		},
		ok:     apiResponse{status: 200, description: "Sessions, most recently updated first.", body: typeOf[SessionsResponse]()},
		errors: []int{400, 503}},
	{method: "get", path: "/v1/agents", id: "listAgents", tag: "agents",
		summary:     "List or search agents",
		description: "The newest version of each agent, best match first when q is given.",
		params: []apiParam{
			{name: "q", in: "query", schema: stringSchema, description: "Words to find in names, titles, descriptions, tags and metadata."},
			{name: "tag", in: "query", array: true, schema: stringSchema, description: "A tag the agents must have; repeatable."},
			{name: "limit", in: "query", schema: map[string]any{"type": "integer", "minimum": 0, "maximum": 1000}, description: "Maximum agents (default 100)."},
		},
		ok:     apiResponse{status: 200, description: "Agents with their schemas.", body: typeOf[AgentsResponse]()},
		errors: []int{400}},
	{method: "post", path: "/v1/agents", id: "registerAgent", tag: "agents",
		summary:     "Register an agent at run time",
		description: "The body is an agent entry of the config file in JSON (common fields plus the kind's options, inline), validated exactly as the config's agents are. The agent survives restarts (it is kept in the registrations file) and connected MCP clients receive notifications/tools/list_changed.",
		request:     typeOf[AgentDefinition](),
		ok: apiResponse{status: 201, description: "The agents registered.", body: typeOf[AgentsResponse](),
			headers: map[string]any{"Location": map[string]any{"description": "The agent's URL, /v1/agents/{name}.", "schema": stringSchema}}},
		errors: []int{400, 403, 409, 413, 415, 422, 503}},
	{method: "get", path: "/v1/agents/{agent}", id: "getAgent", tag: "agents",
		summary:     "Get every version of an agent",
		description: "With name@version, only that version.",
		params:      []apiParam{{name: "agent", in: "path", required: true, schema: stringSchema, description: "The agent's name, or name@version."}},
		ok:          apiResponse{status: 200, description: "Every version, newest first, with schemas.", body: typeOf[AgentVersionsResponse]()},
		errors:      []int{404}},
	// One path template for GET and DELETE: the mux routes one path
	// segment, and /v1/agents/{name}@{version} next to /v1/agents/{name}
	// would make the document ambiguous.
	{method: "delete", path: "/v1/agents/{agent}", id: "unregisterAgent", tag: "agents",
		summary:     "Remove an agent registered at run time",
		description: "DELETE /v1/agents/{name}@{version}. Only agents registered with POST /v1/agents can be removed (409 for agents from the config file or built in); the registrations file forgets them.",
		params: []apiParam{
			{name: "agent", in: "path", required: true, schema: map[string]any{"type": "string", "pattern": "^[^@]+@[^@]+$"}, description: "name@version of the agent."},
		},
		ok:     apiResponse{status: 200, description: "The agents removed.", body: typeOf[UnregisterResponse]()},
		errors: []int{400, 403, 404, 409, 503}},
	{method: "get", path: "/v1/openapi.json", id: "openAPI", tag: "operations",
		summary: "This document",
		ok:      apiResponse{status: 200, description: "The OpenAPI 3.1 document.", schema: map[string]any{"type": "object"}}},
	{method: "get", path: "/healthz", id: "healthz", tag: "operations",
		summary: "Liveness",
		ok:      apiResponse{status: 200, description: "The process serves.", body: typeOf[healthStatus]()}},
	{method: "get", path: "/readyz", id: "readyz", tag: "operations",
		summary: "Readiness",
		ok:      apiResponse{status: 200, description: "Dependencies (the context store) answer; 503 with the same body otherwise.", body: typeOf[healthStatus]()}},
	{method: "get", path: "/metrics", id: "metrics", tag: "operations",
		summary:     "Prometheus metrics",
		description: "Served when metrics are enabled (mcptower serve).",
		ok:          apiResponse{status: 200, description: "Metrics in the Prometheus text format.", contentType: "text/plain", schema: stringSchema}},
	{method: "post", path: "/mcp", id: "mcpPost", tag: "mcp",
		summary:     "MCP Streamable HTTP: send a JSON-RPC message",
		description: "2025-11-25 sessions and 2026-07-28 stateless requests; see https://modelcontextprotocol.io/specification. Errors are JSON-RPC error objects, not problems.",
		requestAny:  map[string]any{"type": "object", "description": "A JSON-RPC 2.0 request, notification or response."},
		ok:          apiResponse{status: 200, description: "A JSON-RPC response (application/json) or a stream of messages (text/event-stream).", schema: map[string]any{"type": "object"}}},
	{method: "get", path: "/mcp", id: "mcpGet", tag: "mcp",
		summary: "MCP Streamable HTTP: open the session's server-to-client stream",
		ok:      apiResponse{status: 200, description: "Server-sent events.", contentType: "text/event-stream", schema: stringSchema}},
	{method: "delete", path: "/mcp", id: "mcpDelete", tag: "mcp",
		summary: "MCP Streamable HTTP: end a session",
		ok:      apiResponse{status: 204, description: "The session is closed."}},
}

// componentTypes are the Go types published as components/schemas, by name.
var componentTypes = map[string]reflect.Type{
	"Problem": typeOf[Problem](),
}

// OpenAPI returns the OpenAPI 3.1 document of the HTTP API. Its schemas are
// generated from the Go request and response types the handlers decode and
// encode (invopop/jsonschema, through package schemas); version goes in
// info.version.
func OpenAPI(version string) ([]byte, error) {
	components := map[string]any{}
	schemaRef := func(t reflect.Type) (map[string]any, error) {
		name := componentName(t)
		if _, done := components[name]; !done {
			s, err := componentSchema(t)
			if err != nil {
				return nil, err
			}
			components[name] = s
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}, nil
	}
	for _, t := range componentTypes {
		if _, err := schemaRef(t); err != nil {
			return nil, err
		}
	}
	problem := map[string]any{
		"description": "An RFC 9457 problem.",
		"content":     map[string]any{contentProblem: map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Problem"}}},
	}

	paths := map[string]any{}
	for _, op := range apiOperations {
		o := map[string]any{"operationId": op.id, "summary": op.summary, "tags": []string{op.tag}}
		if op.description != "" {
			o["description"] = op.description
		}
		if len(op.params) > 0 {
			var params []any
			for _, p := range op.params {
				pm := map[string]any{"name": p.name, "in": p.in, "required": p.required, "schema": p.schema}
				if p.in == "query" {
					pm["allowReserved"] = true // key:value, times: the server reads them unescaped
				}
				if p.array {
					pm["schema"] = map[string]any{"type": "array", "items": p.schema}
					pm["explode"] = true
				}
				if p.description != "" {
					pm["description"] = p.description
				}
				params = append(params, pm)
			}
			o["parameters"] = params
		}
		if op.request != nil || op.requestAny != nil {
			ref := op.requestAny
			if op.request != nil {
				var err error
				if ref, err = schemaRef(op.request); err != nil {
					return nil, err
				}
			}
			o["requestBody"] = map[string]any{
				"required": true,
				"content":  map[string]any{contentJSON: map[string]any{"schema": ref}},
			}
		}
		responses := map[string]any{}
		ok := map[string]any{"description": op.ok.description}
		schema := op.ok.schema
		if op.ok.body != nil {
			ref, err := schemaRef(op.ok.body)
			if err != nil {
				return nil, err
			}
			schema = ref
		}
		if schema != nil {
			ct := op.ok.contentType
			if ct == "" {
				ct = contentJSON
			}
			ok["content"] = map[string]any{ct: map[string]any{"schema": schema}}
		}
		if op.ok.headers != nil {
			ok["headers"] = op.ok.headers
		}
		responses[strconv.Itoa(op.ok.status)] = ok
		for _, status := range op.errors {
			p := map[string]any{"description": http.StatusText(status), "content": problem["content"]}
			responses[strconv.Itoa(status)] = p
		}
		if op.tag != "mcp" && op.path != "/metrics" {
			responses["default"] = problem
		}
		o["responses"] = responses
		item, _ := paths[op.path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[op.path] = item
		}
		item[op.method] = o
	}

	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "mcptower",
			"version":     version,
			"description": "The REST face of mcptower: invoke agents through the same pipeline as MCP tools/call, read the context store, register agents at run time. Every error is an RFC 9457 problem (application/problem+json) whose code is the domain error code.",
		},
		"tags": []any{
			map[string]any{"name": "invoke", "description": "Run agents."},
			map[string]any{"name": "context", "description": "The context store."},
			map[string]any{"name": "agents", "description": "The agent registry."},
			map[string]any{"name": "mcp", "description": "The Model Context Protocol endpoint."},
			map[string]any{"name": "operations", "description": "Health, metrics, this document."},
		},
		"paths":      paths,
		"components": map[string]any{"schemas": components},
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode OpenAPI document: %w", err)
	}
	return out, nil
}

func componentName(t reflect.Type) string {
	if t == typeOf[healthStatus]() {
		return "Health"
	}
	return t.Name()
}

// componentSchema generates t's JSON Schema, without the $schema keyword
// (an OpenAPI 3.1 document states its dialect once).
func componentSchema(t reflect.Type) (map[string]any, error) {
	s, err := schemas.ForType(t)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(s.JSON(), &m); err != nil {
		return nil, fmt.Errorf("schema of %s: %w", t, err)
	}
	delete(m, "$schema")
	if t == typeOf[CompatInvokeRequest]() {
		m["additionalProperties"] = true // the seed's clients may send more
	}
	if t == typeOf[AgentDefinition]() {
		// Keys other than the common fields are the kind's options.
		m["additionalProperties"] = true
		m["description"] = "An agent entry of the config file in JSON: the common fields below, plus the kind's options as further keys (for kind builtin: tool)."
	}
	return m, nil
}
