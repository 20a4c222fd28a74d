// Package logging builds mcptower's slog logger: colored text (tint) when
// stderr is a terminal, JSON otherwise. Logs always go to stderr, never
// stdout, which belongs to the stdio transport.
package logging

import (
	"io"
	"log/slog"
	"os"
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
		return slog.New(tint.NewHandler(w, &tint.Options{Level: level, TimeFormat: time.TimeOnly}))
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}
