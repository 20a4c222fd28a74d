package mcpkind

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"mcptower/agents"
	"mcptower/internal/errs"
)

// syncTools lists the upstream's tools on c and updates the members.
func (u *Upstream) syncTools(ctx context.Context, c *connection) error {
	var tools []*mcp.Tool
	for t, err := range c.sess.Tools(ctx, nil) {
		if err != nil {
			return err
		}
		if t != nil {
			tools = append(tools, t)
		}
	}
	u.setTools(tools)
	return nil
}

// setTools makes the members match the upstream's tools: one per selected
// tool, named deterministically (tools are taken in name order, so a name
// clash resolves the same way every time). A tool whose definition did not
// change keeps its agent, so the registry sees no change for it.
func (u *Upstream) setTools(tools []*mcp.Tool) {
	sort.Slice(tools, func(i, j int) bool { return tools[i].Name < tools[j].Name })
	u.syncMu.Lock()
	defer u.syncMu.Unlock()
	next := make(map[string]*Tool, len(tools))
	for _, t := range tools {
		if !u.s.selected(t.Name) {
			continue
		}
		raw, err := json.Marshal(t)
		if err != nil {
			u.logger.Warn("skipping upstream tool that cannot be encoded", "tool", t.Name, "error", err)
			continue
		}
		name := memberName(u.s.prefix, t.Name)
		if _, taken := next[name]; taken {
			name = hashedName(u.s.prefix, t.Name)
			if _, taken := next[name]; taken {
				u.logger.Warn("skipping upstream tool: its name clashes with another tool's", "tool", t.Name, "agent", name)
				continue
			}
		}
		if old, ok := u.members[name]; ok && old.upstream == t.Name && bytes.Equal(old.raw, raw) {
			next[name] = old
			continue
		}
		next[name] = u.newTool(t, name, raw)
	}
	added, removed := 0, 0
	for name := range next {
		if _, ok := u.members[name]; !ok {
			added++
		}
	}
	for name := range u.members {
		if _, ok := next[name]; !ok {
			removed++
		}
	}
	u.members = next
	if added > 0 || removed > 0 {
		u.logger.Info("upstream tools", "count", len(next), "added", added, "removed", removed)
	}
	u.applyLocked()
}

// applyLocked makes the registry hold exactly the current members (those
// whose names are free). syncMu is held.
func (u *Upstream) applyLocked() {
	if u.registry == nil {
		return
	}
	for name, t := range u.registered {
		if _, keep := u.members[name]; !keep {
			u.unregister(t)
			delete(u.registered, name)
		}
	}
	names := make([]string, 0, len(u.members))
	for name := range u.members {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t := u.members[name]
		if u.registered[name] == t {
			continue
		}
		if u.register(t) {
			u.registered[name] = t
		} else {
			delete(u.registered, name)
		}
	}
}

// register adds t to the registry, replacing an older agent of this
// upstream for the same tool but never an agent that is not ours.
func (u *Upstream) register(t *Tool) bool {
	r := u.registry
	err := r.Add(t)
	if err == nil {
		return true
	}
	if !errs.Is(err, errs.Conflict) {
		u.logger.Warn("cannot register upstream tool", "agent", t.spec.Name, "error", err)
		return false
	}
	if cur, rerr := r.Resolve(t.spec.Ref()); rerr == nil {
		if old, ok := cur.(*Tool); ok && old.up == u {
			if err := r.Put(t); err != nil {
				u.logger.Warn("cannot register upstream tool", "agent", t.spec.Name, "error", err)
				return false
			}
			return true
		}
		u.logger.Warn("upstream tool not registered: another agent has its name; set a prefix, or exclude the tool",
			"agent", t.spec.Ref(), "tool", t.upstream, "taken_by_kind", cur.Spec().Kind)
	}
	return false
}

// unregister removes t from the registry if it is still the registered
// agent of its name@version.
func (u *Upstream) unregister(t *Tool) {
	r := u.registry
	if r == nil {
		return
	}
	if cur, err := r.Resolve(t.spec.Ref()); err == nil && cur == agents.Agent(t) {
		r.Remove(t.spec.Name, t.spec.Version)
	}
}
