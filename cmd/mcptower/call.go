package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"mcptower/agents"
	"mcptower/contextstore"
	"mcptower/internal/errs"
	"mcptower/tools"
)

const callSynopsis = `Usage: mcptower call AGENT[@VERSION] [--input JSON] [--session ID]

Invokes one agent in-process, through the same pipeline as MCP and REST
(validation, timeout, context recording), and prints the result as JSON:
{"session":..., "agent":..., "output":..., "content":..., "is_error":...}.
A failed call exits non-zero with the error on stderr.`

func runCall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("call", callSynopsis, stderr)
	var c common
	c.register(fs)
	input := fs.String("input", "{}", "arguments as a JSON object")
	session := fs.String("session", "", "context session id (default: a new session, printed in the result)")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usagef("call takes one agent name, e.g. mcptower call echo --input '{\"text\":\"hi\"}'")
	}
	if !json.Valid([]byte(*input)) {
		return usagef("--input is not valid JSON: %s", *input)
	}
	app, _, err := c.app(ctx, stderr)
	if err != nil {
		return err
	}
	defer app.Close()
	resp, err := app.Engine.Invoke(ctx, agents.Request{Agent: rest[0], Args: json.RawMessage(*input), Session: *session})
	if err != nil {
		if resp.Session != "" && resp.Agent != "" {
			return fmt.Errorf("%w (session %s)", err, resp.Session)
		}
		return err
	}
	out := struct {
		Session string           `json:"session"`
		Agent   string           `json:"agent"`
		Output  json.RawMessage  `json:"output,omitempty"`
		Content []agents.Content `json:"content,omitempty"`
		Usage   *agents.Usage    `json:"usage,omitempty"`
		IsError bool             `json:"is_error,omitempty"`
	}{resp.Session, resp.Agent, resp.Result.Output, resp.Result.Content, resp.Result.Usage, resp.Result.IsError}
	if err := printJSON(stdout, out); err != nil {
		return err
	}
	if out.IsError {
		return errs.E(errs.Internal, "agent %s reported an error", resp.Agent)
	}
	return nil
}

const agentsSynopsis = `Usage: mcptower agents [QUERY] [--tag TAG]... [--json]

Lists the agents this configuration serves, or searches them by words in
their names, descriptions and tags (as the agents_search tool does).`

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runAgents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("agents", agentsSynopsis, stderr)
	var c common
	c.register(fs)
	var tags stringList
	fs.Var(&tags, "tag", "only agents with this `tag` (repeatable)")
	asJSON := fs.Bool("json", false, "print JSON (with schemas) instead of a table")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	app, _, err := c.app(ctx, stderr)
	if err != nil {
		return err
	}
	defer app.Close()
	matches := app.Registry.Search(agents.Query{Text: strings.Join(rest, " "), Tags: tags, Limit: 1000})
	if *asJSON {
		views := make([]tools.AgentView, len(matches))
		for i, m := range matches {
			views[i] = tools.ViewOf(m.Agent.Spec())
		}
		return printJSON(stdout, views)
	}
	if len(matches) == 0 {
		fmt.Fprintln(stderr, "no agents match")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tKIND\tDESCRIPTION")
	for _, m := range matches {
		s := m.Agent.Spec()
		desc := s.Description
		if len(desc) > 80 {
			desc = desc[:77] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Version, s.Kind, desc)
	}
	return tw.Flush()
}

const historySynopsis = `Usage: mcptower history SESSION [--limit N] [--json]

Prints the recorded context of a session (newest --limit entries, oldest
first). "mcptower history" without a session lists recent sessions.`

func runHistory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("history", historySynopsis, stderr)
	var c common
	c.register(fs)
	limit := fs.Int("limit", 50, "number of entries (newest)")
	asJSON := fs.Bool("json", false, "print JSON")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 1 {
		return usagef("history takes at most one session id")
	}
	app, _, err := c.app(ctx, stderr)
	if err != nil {
		return err
	}
	defer app.Close()
	if app.Store == nil {
		return usagef("history needs a context store (--store is none)")
	}
	if len(rest) == 0 {
		infos, err := app.Store.Sessions(ctx, contextstore.SessionQuery{Limit: *limit})
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, infos)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SESSION\tENTRIES\tUPDATED")
		for _, s := range infos {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", s.ID, s.Entries, s.Updated.Local().Format("2006-01-02 15:04:05"))
		}
		return tw.Flush()
	}
	entries, err := app.Store.History(ctx, rest[0], contextstore.HistoryQuery{Last: true, Limit: *limit})
	if err != nil {
		return err
	}
	if *asJSON {
		if entries == nil {
			entries = []contextstore.Entry{}
		}
		return printJSON(stdout, entries)
	}
	if len(entries) == 0 {
		fmt.Fprintf(stderr, "session %s has no entries\n", rest[0])
		return nil
	}
	for _, e := range entries {
		who := e.Role
		if e.Agent != "" {
			who += " " + e.Agent
		}
		fmt.Fprintf(stdout, "#%d %s %s\n  %s\n", e.Seq, e.Time.Local().Format("2006-01-02 15:04:05"), who, e.Content)
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
