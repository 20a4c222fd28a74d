package server

import (
	"net/http"
	"strings"
)

// JSON-RPC error codes used in HTTP error bodies.
const (
	codeParseError     int64 = -32700
	codeInvalidRequest int64 = -32600
	// codeSessionNotFound is what MCP SDKs answer for an unknown or expired
	// Mcp-Session-Id (with HTTP 404): the client must re-initialize.
	codeSessionNotFound int64 = -32001
)

// rpcErrorBodies turns the SDK's plain-text HTTP error responses (400, 404,
// 405, 413, 415, ...) into JSON-RPC error objects with the same status, so
// every protocol failure a client sees is a JSON-RPC error it can parse.
func rpcErrorBodies(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&errorRewriter{ResponseWriter: w}, r)
	})
}

type errorRewriter struct {
	http.ResponseWriter
	status  int  // non-zero once an error is being rewritten
	written bool // WriteHeader called
}

func (e *errorRewriter) WriteHeader(status int) {
	if e.written {
		return
	}
	e.written = true
	ct := e.Header().Get("Content-Type")
	if status >= 400 && (ct == "" || strings.HasPrefix(ct, "text/plain")) {
		e.status = status
		return // written with the message in Write
	}
	e.ResponseWriter.WriteHeader(status)
}

func (e *errorRewriter) Write(p []byte) (int, error) {
	if !e.written {
		e.WriteHeader(http.StatusOK)
	}
	switch e.status {
	case 0:
		return e.ResponseWriter.Write(p)
	case -1:
		return len(p), nil
	}
	msg := strings.TrimSpace(string(p))
	code := codeInvalidRequest
	switch {
	case e.status == http.StatusNotFound:
		code = codeSessionNotFound
	case e.status == http.StatusBadRequest && strings.Contains(msg, "malformed"):
		code = codeParseError
	}
	e.Header().Del("X-Content-Type-Options")
	writeRPCError(e.ResponseWriter, e.status, code, msg)
	e.status = -1 // only the first Write carries the message
	return len(p), nil
}

// Flush implements http.Flusher for SSE responses.
func (e *errorRewriter) Flush() {
	if f, ok := e.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (e *errorRewriter) Unwrap() http.ResponseWriter { return e.ResponseWriter }
