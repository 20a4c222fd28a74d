// Command mcptower is a Model Context Protocol server for agents: every
// registered agent (an LLM prompt, an upstream MCP server, an HTTP endpoint,
// Go code) becomes an MCP tool, and the context of each conversation is kept
// in a store and exposed as MCP resources.
//
// Run "mcptower help" for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"mcptower/internal/errs"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `mcptower — a Model Context Protocol server for agents.

Usage:
  mcptower <command> [flags]

Commands:
  serve      serve MCP over Streamable HTTP (default 127.0.0.1:8080/mcp) or --stdio
  call       invoke one agent in-process and print the result as JSON
  agents     list agents, or search them: mcptower agents [QUERY] [--tag T]
  history    print the recorded context of a session: mcptower history SESSION
  validate   check a config file and print it with secrets redacted
  bench      load-test an MCP endpoint with tools/call
  version    print the version

Run "mcptower <command> --help" for a command's flags.

Quick start:
  mcptower serve                       # HTTP on 127.0.0.1:8080, context in the default SQLite file
  mcptower serve --stdio               # for Claude Desktop, VS Code and other stdio hosts
  mcptower call context_append --input '{"content":"remember this"}'
  mcptower history

Configuration: --config FILE, or mcptower.yaml in the working directory. Flags
override the file; MCPTOWER_HTTP, MCPTOWER_STORE, MCPTOWER_CONFIG and
MCPTOWER_LOG_LEVEL override the file and are overridden by flags.

Exit codes: 0 ok, 1 failure, 2 usage or invalid input/config, 3 not found,
4 unavailable (store or upstream down), 5 timeout.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		err = runServe(ctx, rest, stdin, stdout, stderr)
	case "call":
		err = runCall(ctx, rest, stdout, stderr)
	case "agents":
		err = runAgents(ctx, rest, stdout, stderr)
	case "history":
		err = runHistory(ctx, rest, stdout, stderr)
	case "validate":
		err = runValidate(ctx, rest, stdout, stderr)
	case "bench":
		err = runBench(ctx, rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "mcptower %s\n", version)
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "mcptower: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	return exitCode(err, stderr)
}

// usageError marks a command-line mistake (exit 2, message already useful).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// exitCode prints err and translates its domain code into an exit code.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "mcptower: %s\n", ue.msg)
		return 2
	}
	fmt.Fprintf(stderr, "mcptower: %v\n", err)
	switch errs.CodeOf(err) {
	case errs.Invalid, errs.Conflict:
		return 2
	case errs.NotFound:
		return 3
	case errs.Unavailable:
		return 4
	case errs.Timeout:
		return 5
	}
	return 1
}
