package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
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
	baseURL := fs.String("baseline-url", "", "also measure this `URL` (e.g. the upstream a proxy forwards to), in alternating rounds in the same run, and report the difference (overhead = --url − --baseline-url)")
	baseTool := fs.String("baseline-tool", "", "tool to call at --baseline-url (default: --tool)")
	rounds := fs.Int("rounds", 3, "with --baseline-url: rounds per side, each -d long")
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
	opts := bench.Options{
		URL: *url, Tool: *tool, Args: json.RawMessage(*argsJSON),
		Concurrency: *conc, Duration: *dur, Requests: *n, Protocol: *protocol, Timeout: *timeout,
	}
	if *baseURL != "" {
		base := opts
		base.URL, base.Tool = *baseURL, cmp.Or(*baseTool, *tool)
		return compareBench(ctx, stdout, opts, base, max(*rounds, 1), *asJSON)
	}
	rep, err := bench.Run(ctx, opts)
	if rep != nil {
		if *asJSON {
			_ = printJSON(stdout, rep)
		} else {
			fmt.Fprintln(stdout, rep)
		}
	}
	return err
}

// comparison is the report of a --baseline-url run: per-round reports of
// both sides and the overhead of the target over the baseline, from the
// median of the rounds' percentiles.
type comparison struct {
	Target        []*bench.Report `json:"target"`
	Baseline      []*bench.Report `json:"baseline"`
	OverheadP50MS float64         `json:"overhead_p50_ms"`
	OverheadP99MS float64         `json:"overhead_p99_ms"`
}

// compareBench measures target and baseline in alternating rounds, so both
// see the same machine, and prints the overhead.
func compareBench(ctx context.Context, stdout io.Writer, target, baseline bench.Options, rounds int, asJSON bool) error {
	var c comparison
	for i := 0; i < rounds; i++ {
		b, err := bench.Run(ctx, baseline)
		if err != nil {
			return fmt.Errorf("baseline round %d: %w", i+1, err)
		}
		t, err := bench.Run(ctx, target)
		if err != nil {
			return fmt.Errorf("target round %d: %w", i+1, err)
		}
		c.Baseline, c.Target = append(c.Baseline, b), append(c.Target, t)
	}
	median := func(rs []*bench.Report, f func(*bench.Report) time.Duration) time.Duration {
		ds := make([]time.Duration, len(rs))
		for i, r := range rs {
			ds[i] = f(r)
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	p50 := func(r *bench.Report) time.Duration { return r.P50 }
	p99 := func(r *bench.Report) time.Duration { return r.P99 }
	d50 := median(c.Target, p50) - median(c.Baseline, p50)
	d99 := median(c.Target, p99) - median(c.Baseline, p99)
	c.OverheadP50MS, c.OverheadP99MS = float64(d50.Microseconds())/1000, float64(d99.Microseconds())/1000
	if asJSON {
		return printJSON(stdout, c)
	}
	for i := range c.Target {
		fmt.Fprintf(stdout, "round %d baseline %s\n%s\n", i+1, baseline.URL, c.Baseline[i])
		fmt.Fprintf(stdout, "round %d target   %s\n%s\n", i+1, target.URL, c.Target[i])
	}
	fmt.Fprintf(stdout, "overhead (median of %d rounds): p50 %+.3f ms  p99 %+.3f ms\n", rounds, c.OverheadP50MS, c.OverheadP99MS)
	return nil
}
