package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"mcptower/agents"
	"mcptower/contextstore"
	"mcptower/contextstore/memory"
	"mcptower/server"
	"mcptower/tools"
)

// testEnv is a server over a memory store with the default built-ins and a
// few fixture agents: convert (typed), fail (agent error), slow (times out),
// liar (output breaks its schema), echo.
type testEnv struct {
	store  contextstore.Store
	reg    *agents.Registry
	engine *agents.Engine
	srv    *server.Server
}

type convertIn struct {
	Value float64 `json:"value" jsonschema:"description=Length to convert"`
	From  string  `json:"from" jsonschema:"enum=m,enum=ft"`
	To    string  `json:"to" jsonschema:"enum=m,enum=ft"`
}

type convertOut struct {
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

func convert(_ context.Context, _ *agents.Call, in convertIn) (convertOut, error) {
	v := in.Value
	switch {
	case in.From == "m" && in.To == "ft":
		v *= 3.28084
	case in.From == "ft" && in.To == "m":
		v /= 3.28084
	}
	return convertOut{Value: float64(int64(v*1000+0.5)) / 1000, Unit: in.To}, nil
}

type empty struct{}

type liarOut struct {
	Count int `json:"count" jsonschema:"minimum=0"`
}

func fixtures(t testing.TB) []agents.Agent {
	t.Helper()
	must := func(a agents.Agent, err error) agents.Agent {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	echo, err := tools.New("echo")
	if err != nil {
		t.Fatal(err)
	}
	return []agents.Agent{
		echo,
		must(agents.Typed(agents.Spec{Name: "convert", Version: "1.2.0", Description: "Converts lengths between metres and feet.", Tags: []string{"units"}}, convert)),
		must(agents.Typed(agents.Spec{Name: "fail", Description: "Always fails."}, func(context.Context, *agents.Call, empty) (empty, error) {
			return empty{}, errors.New("the backend said no")
		})),
		must(agents.Typed(agents.Spec{Name: "slow", Description: "Never finishes in time.", Timeout: 50 * time.Millisecond}, func(ctx context.Context, _ *agents.Call, _ empty) (empty, error) {
			<-ctx.Done()
			return empty{}, ctx.Err()
		})),
		must(agents.Typed(agents.Spec{Name: "liar", Description: "Returns output that breaks its schema."}, func(context.Context, *agents.Call, empty) (liarOut, error) {
			return liarOut{Count: -1}, nil
		})),
	}
}

func newTestEnv(t testing.TB, opts *server.Options) *testEnv {
	t.Helper()
	store := memory.New(contextstore.Options{})
	t.Cleanup(func() { store.Close() })
	reg := agents.NewRegistry()
	for _, a := range append(tools.Defaults(), fixtures(t)...) {
		if err := reg.Add(a); err != nil {
			t.Fatal(err)
		}
	}
	engine := &agents.Engine{Registry: reg, Store: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if opts == nil {
		opts = &server.Options{}
	}
	if opts.Logger == nil {
		opts.Logger = engine.Logger
	}
	opts.Version = "test"
	srv := server.New(engine, opts)
	t.Cleanup(func() { srv.Close() })
	return &testEnv{store: store, reg: reg, engine: engine, srv: srv}
}

func (e *testEnv) register(t testing.TB, name string) {
	t.Helper()
	a, err := agents.Typed(agents.Spec{Name: name, Description: "Registered at runtime."}, func(_ context.Context, _ *agents.Call, in convertOut) (convertOut, error) {
		return in, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.reg.Add(a); err != nil {
		t.Fatal(err)
	}
}
