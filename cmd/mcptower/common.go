package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"mcptower/internal/config"
	"mcptower/internal/logging"
	"mcptower/server"
)

// common are the flags every command that builds an App shares.
type common struct {
	configPath string
	store      string
	logLevel   string
	logFormat  string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.configPath, "config", "", "config `file` (default: $MCPTOWER_CONFIG, else mcptower.yaml in the working directory if present)")
	fs.StringVar(&c.store, "store", "", "context store `URL`: memory:, sqlite:///path/file.db, none (no context), redis://..., postgres://... (default: the config's, else $MCPTOWER_STORE, else a SQLite file in the user's data directory)")
	fs.StringVar(&c.logLevel, "log-level", "", "log `level`: debug, info, warn, error (default info)")
	fs.StringVar(&c.logFormat, "log-format", "", "log `format`: auto (colors on a terminal, JSON otherwise), text, json")
}

// load reads the config (flag, env, or mcptower.yaml) and applies env and
// flag overrides, in that order of precedence: flags > env > file.
func (c *common) load(ctx context.Context) (*config.Config, error) {
	path := c.configPath
	if path == "" {
		path = os.Getenv("MCPTOWER_CONFIG")
	}
	if path == "" {
		found, err := config.Find()
		if err != nil {
			return nil, err
		}
		path = found
	}
	cfg := config.Default()
	if path != "" {
		loaded, err := config.Load(path)
		if err != nil {
			return nil, err
		}
		if err := loaded.Validate(ctx); err != nil {
			return nil, err
		}
		cfg = loaded
	}
	if err := c.override(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (c *common) override(cfg *config.Config) error {
	set := func(dst *string, env, flagValue string) {
		if v := os.Getenv(env); v != "" {
			*dst = v
		}
		if flagValue != "" {
			*dst = flagValue
		}
	}
	set(&cfg.Store.URL, "MCPTOWER_STORE", c.store)
	level := ""
	set(&level, "MCPTOWER_LOG_LEVEL", c.logLevel)
	if level != "" {
		if err := cfg.Server.LogLevel.UnmarshalText([]byte(level)); err != nil {
			return usagef("log level %q: want debug, info, warn or error", level)
		}
	}
	set(&cfg.Server.LogFormat, "MCPTOWER_LOG_FORMAT", c.logFormat)
	switch cfg.Server.LogFormat {
	case "", logging.Auto, logging.Text, logging.JSON:
	default:
		return usagef("log format %q: want auto, text or json", cfg.Server.LogFormat)
	}
	return nil
}

func (c *common) logger(cfg *config.Config, stderr io.Writer) *slog.Logger {
	return logging.New(stderr, cfg.Server.LogLevel, cfg.Server.LogFormat)
}

// app loads the config and builds the App.
func (c *common) app(ctx context.Context, stderr io.Writer) (*server.App, *config.Config, error) {
	cfg, err := c.load(ctx)
	if err != nil {
		return nil, nil, err
	}
	a, err := server.NewApp(ctx, cfg, c.logger(cfg, stderr), version)
	if err != nil {
		return nil, nil, err
	}
	return a, cfg, nil
}

// newFlagSet returns a FlagSet whose --help prints a synopsis and the flags.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nFlags:\n", strings.TrimSpace(synopsis))
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, allowing flags after positional arguments
// ("mcptower call echo --input {}").
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return nil, err
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}
