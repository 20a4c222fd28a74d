package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"mcptower/internal/errs"
)

// Kind classifies a failed provider call.
type Kind int

// The kinds of provider failure.
const (
	// KindOther is an unexpected HTTP status.
	KindOther Kind = iota
	// KindAuth: the API key is missing or wrong (401).
	KindAuth
	// KindPermission: the key may not use this model or endpoint (403).
	KindPermission
	// KindModelNotFound: the model does not exist or is not available (404).
	KindModelNotFound
	// KindEndpointNotFound: the URL does not exist (404): base_url is wrong.
	KindEndpointNotFound
	// KindRateLimited: too many requests (429); retry after RetryAfter.
	KindRateLimited
	// KindQuota: the account is out of credit (429 insufficient_quota);
	// retrying does not help.
	KindQuota
	// KindContextTooLong: the prompt does not fit the model's context.
	KindContextTooLong
	// KindBadRequest: the provider rejected the request (400, 413, 422).
	KindBadRequest
	// KindServer: the provider failed (5xx, or an api_error event).
	KindServer
	// KindOverloaded: the provider is overloaded (529, overloaded_error).
	KindOverloaded
	// KindTransport: the request did not get an HTTP response (connection
	// refused or reset, DNS, TLS).
	KindTransport
	// KindStream: the response stream broke off before it was complete.
	KindStream
	// KindMalformed: the provider sent something that is not its wire
	// format (invalid JSON, a stream event of the wrong shape).
	KindMalformed
	// KindRefused: the model declined to answer (OpenAI's refusal).
	KindRefused
)

// Error is a failed provider call. Its message is meant for the person or
// model reading the tool error: it names the provider, says what happened
// and what to check, and never contains the API key.
type Error struct {
	// Provider is "openai" or "anthropic".
	Provider string
	// Kind classifies the failure.
	Kind Kind
	// Status is the HTTP status; 0 for transport and stream errors.
	Status int
	// Type is the provider's error type or code ("rate_limit_error",
	// "context_length_exceeded"), if it sent one.
	Type string
	// Message is the provider's own message, with secrets removed.
	Message string
	// Model is the requested model (for KindModelNotFound).
	Model string
	// URL is the requested URL (for KindEndpointNotFound and KindTransport).
	URL string
	// RetryAfter is how long the provider asked to wait (Retry-After);
	// zero if it did not say.
	RetryAfter time.Duration
	// Err is the underlying error of transport, stream and decoding
	// failures.
	Err error
}

// Error returns the readable message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Provider)
	b.WriteString(": ")
	status := ""
	if e.Status > 0 {
		status = " (" + strconv.Itoa(e.Status) + ")"
	}
	switch e.Kind {
	case KindAuth:
		b.WriteString("authentication failed" + status + ": check api_key")
	case KindPermission:
		b.WriteString("permission denied" + status + ": the api_key may not use this model or endpoint")
	case KindModelNotFound:
		fmt.Fprintf(&b, "model %q not found%s", e.Model, status)
	case KindEndpointNotFound:
		fmt.Fprintf(&b, "%s not found%s: check base_url", e.URL, status)
	case KindRateLimited:
		if e.RetryAfter > 0 {
			b.WriteString("rate limited, retry after " + e.RetryAfter.String())
		} else {
			b.WriteString("rate limited" + status)
		}
	case KindQuota:
		b.WriteString("quota exceeded" + status + ": check the account's plan and billing")
	case KindContextTooLong:
		b.WriteString("context too long")
	case KindBadRequest:
		b.WriteString("bad request" + status)
	case KindServer:
		b.WriteString("server error" + status)
	case KindOverloaded:
		b.WriteString("overloaded" + status + ", try again later")
	case KindTransport:
		if e.URL != "" {
			fmt.Fprintf(&b, "request to %s failed (is the server running? check base_url)", e.URL)
		} else {
			b.WriteString("request failed")
		}
	case KindStream:
		b.WriteString("response stream interrupted")
	case KindMalformed:
		b.WriteString("malformed response")
	case KindRefused:
		b.WriteString("the model refused to answer")
	default:
		b.WriteString("unexpected response" + status)
	}
	detail := e.Message
	if detail == "" && e.Err != nil {
		detail = causeText(e.Err)
	}
	if detail != "" {
		b.WriteString(": ")
		b.WriteString(detail)
	}
	return b.String()
}

// causeText is err's message without the `Post "url": ` prefix that
// net/http adds (the URL is already in the message).
func causeText(err error) string {
	if ue, ok := errors.AsType[*url.Error](err); ok && ue.Err != nil {
		return ue.Err.Error()
	}
	return err.Error()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Code returns the domain error code of e.
func (e *Error) Code() errs.Code {
	switch e.Kind {
	case KindAuth:
		return errs.Unauthorized
	case KindPermission:
		return errs.Forbidden
	case KindModelNotFound, KindEndpointNotFound:
		return errs.NotFound
	case KindRateLimited, KindQuota:
		return errs.RateLimited
	case KindContextTooLong, KindBadRequest, KindRefused:
		return errs.Invalid
	case KindServer, KindOverloaded, KindTransport, KindStream, KindMalformed:
		return errs.Unavailable
	}
	return errs.Internal
}

// Retryable reports whether the same request may succeed if sent again:
// rate limits, server errors, overload, and connections that failed or
// broke off (unless the caller cancelled). Whether output was already
// streamed is for the caller to judge.
func (e *Error) Retryable() bool {
	switch e.Kind {
	case KindRateLimited, KindServer, KindOverloaded:
		return true
	case KindTransport, KindStream:
		return !errors.Is(e.Err, context.Canceled) && !errors.Is(e.Err, context.DeadlineExceeded)
	}
	return false
}

// Wrap returns e as an error carrying its domain code, for errs.CodeOf.
func (e *Error) Wrap() error {
	return &errs.Error{Code: e.Code(), Msg: e.Error(), Err: e}
}

// StatusKind is the kind of an HTTP error status, before looking at the
// body: providers refine it (a 404 for a model, a 400 for a long prompt).
func StatusKind(status int) Kind {
	switch {
	case status == http.StatusUnauthorized:
		return KindAuth
	case status == http.StatusForbidden:
		return KindPermission
	case status == http.StatusNotFound:
		return KindEndpointNotFound
	case status == http.StatusTooManyRequests:
		return KindRateLimited
	case status == 529 || status == http.StatusServiceUnavailable:
		return KindOverloaded
	case status == http.StatusRequestTimeout || status >= 500:
		return KindServer
	case status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge || status == http.StatusUnprocessableEntity:
		return KindBadRequest
	}
	return KindOther
}

// LooksLikeContextTooLong reports whether a provider's 400 message is about
// the prompt not fitting the context window. Providers and local servers
// word it differently; these are the wordings of OpenAI, Anthropic, vLLM,
// llama.cpp and Ollama.
func LooksLikeContextTooLong(typ, msg string) bool {
	if typ == "context_length_exceeded" || typ == "exceed_context_size_error" {
		return true
	}
	m := strings.ToLower(msg)
	for _, s := range []string{"context length", "context_length", "context window", "context size", "prompt is too long", "too many tokens", "maximum context"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// MaxRetryAfter bounds what RetryAfter parses, so a bogus header cannot
// stall a caller for hours.
const MaxRetryAfter = 24 * time.Hour

// RetryAfter returns how long the response asks the client to wait:
// "retry-after-ms" (OpenAI), then "Retry-After" in seconds or as an HTTP
// date. Zero if it does not say.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && ms > 0 {
			return clampWait(time.Duration(ms * float64(time.Millisecond)))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return clampWait(time.Duration(s * float64(time.Second)))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return clampWait(d.Round(time.Second))
		}
	}
	return 0
}

func clampWait(d time.Duration) time.Duration {
	if d > MaxRetryAfter || d < 0 {
		return MaxRetryAfter
	}
	return d
}

// MaxErrorBody bounds how much of an error response is read.
const MaxErrorBody = 64 << 10

// ReadErrorBody reads (a bounded prefix of) an error response's body.
func ReadErrorBody(body io.Reader) []byte {
	data, _ := io.ReadAll(io.LimitReader(body, MaxErrorBody))
	return data
}

// PlainText returns a short, single-line excerpt of a body that is not the
// provider's JSON (an HTML error page from a proxy, a plain-text message).
func PlainText(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	const max = 300
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// Redact removes secret from s. Some providers echo (part of) the key in
// their messages; a key never reaches a tool result or a log.
func Redact(s, secret string) string {
	if len(secret) < 4 {
		return s
	}
	s = strings.ReplaceAll(s, secret, "[redacted]")
	return s
}
