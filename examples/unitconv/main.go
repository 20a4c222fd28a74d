// Command unitconv embeds mcptower in a Go program: it registers a typed Go
// function as an agent (a unit converter) next to the built-in context tools
// and serves them over Streamable HTTP or stdio.
//
//	go run ./examples/unitconv                 # HTTP on 127.0.0.1:8081/mcp
//	go run ./examples/unitconv --stdio         # for stdio hosts
//
// Input and output schemas are generated from the ConvertInput and
// ConvertOutput structs; arguments are validated before Convert runs and
// every call is recorded in the context store.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"mcptower/agents"
	"mcptower/contextstore"
	"mcptower/contextstore/memory"
	"mcptower/server"
	"mcptower/tools"
)

// ConvertInput are the converter's arguments.
type ConvertInput struct {
	Value float64 `json:"value" jsonschema_description:"The quantity to convert"`
	From  string  `json:"from" jsonschema:"enum=m,enum=km,enum=ft,enum=mi,enum=c,enum=f" jsonschema_description:"Unit of value"`
	To    string  `json:"to" jsonschema:"enum=m,enum=km,enum=ft,enum=mi,enum=c,enum=f" jsonschema_description:"Unit to convert to"`
}

// ConvertOutput is the converted quantity.
type ConvertOutput struct {
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// toMetres converts lengths to metres.
var toMetres = map[string]float64{"m": 1, "km": 1000, "ft": 0.3048, "mi": 1609.344}

// Convert converts lengths (m, km, ft, mi) and temperatures (c, f).
func Convert(_ context.Context, _ *agents.Call, in ConvertInput) (ConvertOutput, error) {
	if in.From == in.To {
		return ConvertOutput{Value: in.Value, Unit: in.To}, nil
	}
	switch {
	case in.From == "c" && in.To == "f":
		return ConvertOutput{Value: in.Value*9/5 + 32, Unit: "f"}, nil
	case in.From == "f" && in.To == "c":
		return ConvertOutput{Value: (in.Value - 32) * 5 / 9, Unit: "c"}, nil
	}
	from, ok1 := toMetres[in.From]
	to, ok2 := toMetres[in.To]
	if !ok1 || !ok2 {
		// A domain error the model can read (and the edge maps to a tool error).
		return ConvertOutput{}, agents.Errorf(agents.CodeInvalid, "cannot convert %s to %s", in.From, in.To)
	}
	return ConvertOutput{Value: in.Value * from / to, Unit: in.To}, nil
}

// NewServer builds the MCP server: the converter plus the built-in context
// tools, over store.
func NewServer(store contextstore.Store) (*server.Server, error) {
	convert, err := agents.Typed(agents.Spec{
		Name:        "convert_units",
		Version:     "1.0.0",
		Title:       "Convert units",
		Description: "Converts lengths (m, km, ft, mi) and temperatures (c, f).",
		Tags:        []string{"units", "math"},
		Hints:       agents.Hints{ReadOnly: true, Idempotent: true},
	}, Convert)
	if err != nil {
		return nil, err
	}
	reg := agents.NewRegistry()
	for _, a := range append(tools.Defaults(), convert) {
		if err := reg.Add(a); err != nil {
			return nil, err
		}
	}
	engine := &agents.Engine{Registry: reg, Store: store}
	return server.New(engine, &server.Options{Version: "example"}), nil
}

func main() {
	addr := flag.String("http", "127.0.0.1:8081", "HTTP listen address")
	stdio := flag.Bool("stdio", false, "serve over stdin/stdout")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	store := memory.New(contextstore.Options{})
	defer store.Close()
	srv, err := NewServer(store)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	if *stdio {
		if err := srv.ServeStdio(ctx, os.Stdin, os.Stdout); err != nil {
			log.Fatal(err)
		}
		return
	}
	hs := &http.Server{Addr: *addr, Handler: srv.Handler()}
	go func() {
		<-ctx.Done()
		hs.Shutdown(context.Background())
	}()
	fmt.Fprintf(os.Stderr, "unit converter on http://%s/mcp\n", *addr)
	if err := hs.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
