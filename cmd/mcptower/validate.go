package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"mcptower/internal/bench"
	"mcptower/internal/config"
)

const validateSynopsis = `Usage: mcptower validate [--config FILE]

Checks a config file: YAML syntax, known fields, durations, environment
variables, and every agent's kind and options (agents are built, then
discarded). Problems are printed with file:line; on success the effective
config is printed with secrets redacted.`

func runValidate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("validate", validateSynopsis, stderr)
	path := fs.String("config", "", "config `file` (default: mcptower.yaml in the working directory)")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) == 1 && *path == "" {
		*path = rest[0]
	} else if len(rest) > 0 {
		return usagef("validate takes one config file")
	}
	if *path == "" {
		if *path, err = config.Find(); err != nil {
			return err
		}
		if *path == "" {
			return usagef("no config file: pass --config FILE (or create mcptower.yaml)")
		}
	}
	cfg, err := config.Load(*path)
	if err == nil {
		err = cfg.Validate(ctx)
	}
	if err != nil {
		return fmt.Errorf("%s is not valid:\n%w", *path, err)
	}
	fmt.Fprintf(stderr, "%s is valid: %d agent(s)\n", *path, len(cfg.Agents))
	out, err := cfg.Redacted().Marshal()
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

const benchSynopsis = `Usage: mcptower bench --url URL --tool NAME [--args JSON] [-c N] [-d DURATION]

Load-tests an MCP Streamable HTTP endpoint with tools/call, using its own
minimal JSON-RPC client (so it measures the server, not an SDK). Prints
requests/s and latency percentiles; exits 1 if any call failed.
Only point it at servers you run.`

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", benchSynopsis, stderr)
	url := fs.String("url", "http://127.0.0.1:8080/mcp", "MCP endpoint `URL`")
	tool := fs.String("tool", "", "tool to call (required)")
	argsJSON := fs.String("args", "{}", "tool arguments as a JSON object")
	conc := fs.Int("c", 16, "concurrent clients (each its own session)")
	dur := fs.Duration("d", 10*time.Second, "duration of the measured run")
	n := fs.Int("n", 0, "stop after this many calls (0: run for -d)")
	protocol := fs.String("protocol", "", "protocol version: 2025-11-25 (sessions, default) or 2026-07-28 (stateless)")
	timeout := fs.Duration("timeout", 0, "per-call timeout (default 30s)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("bench takes no arguments, got %s", strings.Join(rest, " "))
	}
	if *tool == "" {
		return usagef("bench needs --tool NAME")
	}
	if !json.Valid([]byte(*argsJSON)) {
		return usagef("--args is not valid JSON: %s", *argsJSON)
	}
	rep, err := bench.Run(ctx, bench.Options{
		URL: *url, Tool: *tool, Args: json.RawMessage(*argsJSON),
		Concurrency: *conc, Duration: *dur, Requests: *n, Protocol: *protocol, Timeout: *timeout,
	})
	if rep != nil {
		if *asJSON {
			_ = printJSON(stdout, rep)
		} else {
			fmt.Fprintln(stdout, rep)
		}
	}
	return err
}
