package wire_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mcptower/agents/llm/wire"
	"mcptower/internal/errs"
)

func readAll(s string) ([]wire.Event, error) {
	r := wire.NewSSEReader(strings.NewReader(s))
	var out []wire.Event
	for {
		ev, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, wire.Event{Name: ev.Name, Data: append([]byte(nil), ev.Data...)})
	}
}

func TestSSEReader(t *testing.T) {
	ev := func(name, data string) wire.Event { return wire.Event{Name: name, Data: []byte(data)} }
	tests := []struct {
		name string
		in   string
		want []wire.Event
		err  error
	}{
		{"data only", "data: {\"a\":1}\n\ndata: [DONE]\n\n", []wire.Event{ev("", `{"a":1}`), ev("", "[DONE]")}, nil},
		{"named", "event: ping\ndata: {}\n\n", []wire.Event{ev("ping", "{}")}, nil},
		{"CRLF", "event: x\r\ndata: 1\r\n\r\n", []wire.Event{ev("x", "1")}, nil},
		{"multi-line data", "data: a\ndata: b\ndata:\n\n", []wire.Event{ev("", "a\nb\n")}, nil},
		{"no space after colon", "data:{}\n\n", []wire.Event{ev("", "{}")}, nil},
		{"comments and ids", ": keep-alive\nid: 7\nretry: 100\ndata: x\n\n", []wire.Event{ev("", "x")}, nil},
		{"event without data is dropped", "event: a\n\ndata: b\n\n", []wire.Event{ev("", "b")}, nil},
		{"extra blank lines", "\n\n\ndata: x\n\n\n\n", []wire.Event{ev("", "x")}, nil},
		{"empty", "", nil, nil},
		{"truncated event", "data: x\n\ndata: {\"a\":", []wire.Event{ev("", "x")}, wire.ErrTruncated},
		{"truncated before blank line", "data: x\n", nil, wire.ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSSEReaderBounds(t *testing.T) {
	long := "data: " + strings.Repeat("x", wire.MaxEventBytes+1) + "\n\n"
	if _, err := readAll(long); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("overlong line: err = %v", err)
	}
	many := strings.Repeat("data: "+strings.Repeat("x", 1<<20)+"\n", 5) + "\n"
	if _, err := readAll(many); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("overlong event: err = %v", err)
	}
}

func FuzzSSEReader(f *testing.F) {
	for _, s := range []string{"data: x\n\n", "event: a\r\ndata: 1\r\n\r\n", ": c\ndata:\n\n", "data: [DONE]\n\n", "data: {\"a\":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := wire.NewSSEReader(strings.NewReader(s))
		for i := 0; i <= len(s); i++ {
			ev, err := r.Next()
			if err != nil {
				return
			}
			if len(ev.Data) > len(s) {
				t.Fatalf("event data longer than the input")
			}
		}
		t.Fatalf("more events than input bytes")
	})
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		header map[string]string
		want   time.Duration
	}{
		{nil, 0},
		{map[string]string{"Retry-After": "2"}, 2 * time.Second},
		{map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{map[string]string{"Retry-After": "0"}, 0},
		{map[string]string{"Retry-After": "-3"}, 0},
		{map[string]string{"Retry-After": "soon"}, 0},
		{map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second},
		{map[string]string{"Retry-After": now.Add(-time.Hour).Format(http.TimeFormat)}, 0},
		{map[string]string{"Retry-After": "99999999999"}, wire.MaxRetryAfter},
		{map[string]string{"Retry-After-Ms": "250", "Retry-After": "2"}, 250 * time.Millisecond},
		{map[string]string{"Retry-After-Ms": "junk", "Retry-After": "2"}, 2 * time.Second},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.header {
			h.Set(k, v)
		}
		if got := wire.RetryAfter(h, now); got != tt.want {
			t.Errorf("RetryAfter(%v) = %v, want %v", tt.header, got, tt.want)
		}
	}
}

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		err  *wire.Error
		want string
		code errs.Code
	}{
		{&wire.Error{Provider: "anthropic", Kind: wire.KindAuth, Status: 401}, "anthropic: authentication failed (401): check api_key", errs.Unauthorized},
		{&wire.Error{Provider: "openai", Kind: wire.KindModelNotFound, Status: 404, Model: "x"}, `openai: model "x" not found (404)`, errs.NotFound},
		{&wire.Error{Provider: "openai", Kind: wire.KindRateLimited, Status: 429, RetryAfter: 2 * time.Second}, "openai: rate limited, retry after 2s", errs.RateLimited},
		{&wire.Error{Provider: "openai", Kind: wire.KindRateLimited, Status: 429}, "openai: rate limited (429)", errs.RateLimited},
		{&wire.Error{Provider: "openai", Kind: wire.KindContextTooLong, Status: 400, Message: "too many tokens"}, "openai: context too long: too many tokens", errs.Invalid},
		{&wire.Error{Provider: "openai", Kind: wire.KindPermission, Status: 403}, "openai: permission denied (403): the api_key may not use this model or endpoint", errs.Forbidden},
		{&wire.Error{Provider: "openai", Kind: wire.KindOther, Status: 418, Message: "teapot"}, "openai: unexpected response (418): teapot", errs.Internal},
		{&wire.Error{Provider: "openai", Kind: wire.KindTransport, URL: "http://127.0.0.1:1/v1",
			Err: fmt.Errorf("post: %w", errors.New("connection refused"))}, "openai: request to http://127.0.0.1:1/v1 failed (is the server running? check base_url): post: connection refused", errs.Unavailable},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if got := errs.CodeOf(tt.err.Wrap()); got != tt.code {
			t.Errorf("%s: code %v, want %v", tt.want, got, tt.code)
		}
	}
	cancelled := &wire.Error{Kind: wire.KindStream, Err: fmt.Errorf("%w (reading)", context.Canceled)}
	if cancelled.Retryable() {
		t.Error("a cancelled stream is retryable")
	}
}

func TestRedact(t *testing.T) {
	if got := wire.Redact("bad key sk-abcdef in request", "sk-abcdef"); got != "bad key [redacted] in request" {
		t.Errorf("Redact = %q", got)
	}
	if got := wire.Redact("abc", ""); got != "abc" {
		t.Errorf("Redact with no secret = %q", got)
	}
}

func TestPlainText(t *testing.T) {
	long := strings.Repeat("é", 400)
	got := wire.PlainText([]byte(long))
	if !strings.HasSuffix(got, "…") || len(got) > 310 || !strings.HasPrefix(got, "éé") {
		t.Errorf("PlainText(long) = %q", got)
	}
	for _, r := range strings.TrimSuffix(got, "…") {
		if r != 'é' {
			t.Fatalf("PlainText cut a rune: %q", got)
		}
	}
}
