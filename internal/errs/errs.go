// Package errs defines mcptower's domain error codes. They are defined once
// here and translated once at each edge: a JSON-RPC error or an isError tool
// result for MCP, an HTTP status for REST, an exit code for the CLI.
package errs

import (
	"errors"
	"fmt"
)

// Code classifies a domain error.
type Code int

// The domain error codes. The zero Code is Internal so that an error without
// a code is never mistaken for a client mistake.
const (
	Internal Code = iota
	NotFound
	Invalid
	Unauthorized
	Forbidden
	RateLimited
	Unavailable
	Timeout
	Conflict
)

var codeNames = [...]string{
	Internal:     "internal",
	NotFound:     "not_found",
	Invalid:      "invalid",
	Unauthorized: "unauthorized",
	Forbidden:    "forbidden",
	RateLimited:  "rate_limited",
	Unavailable:  "unavailable",
	Timeout:      "timeout",
	Conflict:     "conflict",
}

// String returns the code's stable snake_case name, used in JSON bodies and logs.
func (c Code) String() string {
	if int(c) >= 0 && int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code(%d)", int(c))
}

// Error is an error with a domain code. Its message is meant for the caller:
// it says what went wrong in their terms.
type Error struct {
	Code Code
	Msg  string
	Err  error // optional cause
}

func (e *Error) Error() string {
	if e.Msg == "" && e.Err != nil {
		return e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// E returns a new *Error with code c and a formatted message. A %w verb in
// format records the cause.
func E(c Code, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: c, Msg: err.Error(), Err: errors.Unwrap(err)}
}

// Wrap returns err with code c and context msg; nil stays nil.
func Wrap(c Code, err error, msg string) error {
	if err == nil {
		return nil
	}
	return &Error{Code: c, Msg: msg + ": " + err.Error(), Err: err}
}

// CodeOf returns the code of the outermost *Error in err's chain, or Internal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// Is reports whether err carries code c.
func Is(err error, c Code) bool { return err != nil && CodeOf(err) == c }
