// Command install installs the upstream MCP servers the federation tests
// use (see package mcpkindtest) into the cache directory, and prints the
// entry script's path. CI runs it before the tests; it does nothing when the
// pinned version is already installed.
package main

import (
	"context"
	"fmt"
	"os"

	"mcptower/agents/mcpkind/mcpkindtest"
)

func main() {
	dir, err := mcpkindtest.CacheDir()
	if err == nil {
		var script string
		if script, err = mcpkindtest.Install(context.Background(), dir); err == nil {
			fmt.Println(script)
			return
		}
	}
	fmt.Fprintln(os.Stderr, "install test upstreams:", err)
	os.Exit(1)
}
