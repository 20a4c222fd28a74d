package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mcptower/internal/bench"
)

// TestProxyOverhead measures what mcptower adds in front of an upstream:
// the same tools/call (a built-in echo) made directly to an upstream
// mcptower and through a front mcptower that federates it (kind mcp over
// Streamable HTTP), with the load generator behind `mcptower bench`
// (internal/bench), in alternating rounds within one run so that both sides
// see the same machine. Overhead = proxied - direct, per percentile, median
// over rounds.
//
// It is opt-in (it takes about a minute and wants a quiet machine):
//
//	MCPTOWER_BENCH=1 go test ./cmd/mcptower -run TestProxyOverhead -v
//
// MCPTOWER_BENCH_ROUNDS (default 3), MCPTOWER_BENCH_DURATION (default 5s)
// and MCPTOWER_BENCH_CONCURRENCY (default "1,16") tune it.
func TestProxyOverhead(t *testing.T) {
	if os.Getenv("MCPTOWER_BENCH") == "" {
		t.Skip("set MCPTOWER_BENCH=1 to measure the proxy overhead")
	}
	rounds := envInt(t, "MCPTOWER_BENCH_ROUNDS", 3)
	dur := 5 * time.Second
	if v := os.Getenv("MCPTOWER_BENCH_DURATION"); v != "" {
		var err error
		if dur, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	concs := []int{1, 16}
	if v := os.Getenv("MCPTOWER_BENCH_CONCURRENCY"); v != "" {
		concs = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				t.Fatal(err)
			}
			concs = append(concs, n)
		}
	}

	dir := t.TempDir()
	env := testEnvVars(t)
	upCfg := filepath.Join(dir, "upstream.yaml")
	writeFile(t, upCfg, "agents:\n  - name: shout\n    kind: builtin\n    tool: echo\n")
	up := startHTTP(t, env, "--config", upCfg, "--store", "none")
	frontCfg := filepath.Join(dir, "front.yaml")
	writeFile(t, frontCfg, fmt.Sprintf("agents:\n  - name: up\n    kind: mcp\n    url: %s\n", up.url))
	front := startHTTP(t, env, "--config", frontCfg, "--store", "none")

	args := json.RawMessage(`{"text":"hi"}`)
	type sample struct{ p50, p99, rps []float64 }
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	var report strings.Builder
	fmt.Fprintf(&report, "%d rounds of %s per side, alternating; medians over rounds\n\n", rounds, dur)
	fmt.Fprintf(&report, "| clients | path | req/s | p50 | p99 |\n| ---: | --- | ---: | ---: | ---: |\n")
	var overhead []string
	for _, c := range concs {
		var direct, proxied sample
		for r := 0; r < rounds; r++ {
			for _, side := range []struct {
				s         *sample
				url, tool string
			}{{&direct, up.url, "shout"}, {&proxied, front.url, "up_shout"}} {
				rep, err := bench.Run(t.Context(), bench.Options{URL: side.url, Tool: side.tool, Args: args, Concurrency: c, Duration: dur})
				if err != nil {
					t.Fatalf("bench %s %s: %v", side.url, side.tool, err)
				}
				side.s.p50 = append(side.s.p50, ms(rep.P50))
				side.s.p99 = append(side.s.p99, ms(rep.P99))
				side.s.rps = append(side.s.rps, rep.RPS)
			}
		}
		d50, d99, drps := median(direct.p50), median(direct.p99), median(direct.rps)
		p50, p99, prps := median(proxied.p50), median(proxied.p99), median(proxied.rps)
		fmt.Fprintf(&report, "| %d | direct (upstream mcptower) | %.0f | %.3f ms | %.3f ms |\n", c, drps, d50, d99)
		fmt.Fprintf(&report, "| %d | through the front mcptower | %.0f | %.3f ms | %.3f ms |\n", c, prps, p50, p99)
		overhead = append(overhead, fmt.Sprintf("%d clients: p50 overhead %+.3f ms, p99 overhead %+.3f ms (rounds: p50 direct %v, proxied %v)", c, p50-d50, p99-d99, direct.p50, proxied.p50))
	}
	report.WriteString("\n" + strings.Join(overhead, "\n") + "\n")
	t.Log("\n" + report.String())
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}
