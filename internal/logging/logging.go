// Package logging builds mcptower's slog logger: colored text (tint) when
// stderr is a terminal, JSON otherwise. Logs always go to stderr, never
// stdout, which belongs to the stdio transport.
package logging

import (
	"context"
	"io"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/lmittmann/tint"
	"golang.org/x/term"
)

// Formats.
const (
	Auto = "auto"
	Text = "text"
	JSON = "json"
)

// New returns a logger writing to w at level in format (Auto, Text or JSON;
// "" means Auto). Auto picks tint when w is a terminal.
func New(w io.Writer, level slog.Leveler, format string) *slog.Logger {
	if format == "" || format == Auto {
		format = JSON
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = Text
		}
	}
	if format == Text {
		return slog.New(contextHandler{tint.NewHandler(w, &tint.Options{Level: level, TimeFormat: time.TimeOnly})})
	}
	return slog.New(contextHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

type ctxAttrsKey struct{}

// WithAttrs returns ctx carrying attrs that every log line written with ctx
// (slog's *Context methods) includes: request ids, sessions.
func WithAttrs(ctx context.Context, attrs ...slog.Attr) context.Context {
	prev, _ := ctx.Value(ctxAttrsKey{}).([]slog.Attr)
	all := make([]slog.Attr, 0, len(prev)+len(attrs))
	for _, a := range prev {
		// A key set again replaces the earlier value: an MCP request's
		// handler context descends from the request that opened its
		// session, whose request_id must not appear beside its own.
		if !slices.ContainsFunc(attrs, func(b slog.Attr) bool { return b.Key == a.Key }) {
			all = append(all, a)
		}
	}
	all = append(all, attrs...)
	return context.WithValue(ctx, ctxAttrsKey{}, all)
}

// contextHandler adds the attrs of WithAttrs to each record.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if attrs, ok := ctx.Value(ctxAttrsKey{}).([]slog.Attr); ok {
		r.AddAttrs(attrs...)
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(as)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}
