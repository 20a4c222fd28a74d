// Package mcpkindtest gives federation tests a real upstream: the reference
// MCP server @modelcontextprotocol/server-everything, at a pinned version
// (with its whole dependency tree pinned by a package-lock.json), installed
// from npm with "npm ci" into a cache directory outside the repository.
//
// CI installs it before the tests (go run ./agents/mcpkind/mcpkindtest/install);
// tests install it themselves when it is missing. Without node or npm, tests
// that need it are skipped, unless CI=true, where they fail.
package mcpkindtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// EverythingVersion is the pinned version of
// @modelcontextprotocol/server-everything.
const EverythingVersion = "2026.8.31"

// EverythingPackage is the npm package name.
const EverythingPackage = "@modelcontextprotocol/server-everything"

//go:embed npm/package.json npm/package-lock.json
var npmFiles embed.FS

// CacheDir returns the directory installs go under: $MCPTOWER_NPM_CACHE if
// set, else "mcptower-npm" beside the Go build cache.
func CacheDir() (string, error) {
	if d := os.Getenv("MCPTOWER_NPM_CACHE"); d != "" {
		return d, nil
	}
	out, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		return "", fmt.Errorf("find the Go build cache: %w", err)
	}
	gocache := strings.TrimSpace(string(out))
	if gocache == "" || gocache == "off" {
		return filepath.Join(os.TempDir(), "mcptower-npm"), nil
	}
	return filepath.Join(filepath.Dir(gocache), "mcptower-npm"), nil
}

// Install installs server-everything under dir unless it is there already,
// and returns the path of its entry script (dist/index.js). It is
// idempotent and safe to run from several processes at once: it installs
// into a temporary directory and renames it into place.
func Install(ctx context.Context, dir string) (string, error) {
	lock, err := npmFiles.ReadFile("npm/package-lock.json")
	if err != nil {
		return "", err
	}
	pkg, err := npmFiles.ReadFile("npm/package.json")
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(append(append([]byte{}, pkg...), lock...))
	target := filepath.Join(dir, "everything-"+EverythingVersion+"-"+hex.EncodeToString(sum[:4]))
	script := filepath.Join(target, "node_modules", filepath.FromSlash(EverythingPackage), "dist", "index.js")
	if _, err := os.Stat(script); err == nil {
		return script, nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return "", fmt.Errorf("install %s@%s: npm not found in PATH: %w", EverythingPackage, EverythingVersion, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, "install-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // after a successful rename, there is nothing left
	if err := os.WriteFile(filepath.Join(tmp, "package.json"), pkg, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, "package-lock.json"), lock, 0o644); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
	cmd.Dir = tmp
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("npm ci for %s@%s: %w\n%s", EverythingPackage, EverythingVersion, err, out.String())
	}
	if err := os.Rename(tmp, target); err != nil {
		if _, serr := os.Stat(script); serr == nil {
			return script, nil // another process won the race
		}
		return "", fmt.Errorf("move the install into place: %w", err)
	}
	if _, err := os.Stat(script); err != nil {
		return "", fmt.Errorf("npm ci succeeded but %s is missing: %w", script, err)
	}
	return script, nil
}

// Everything returns the node binary and the entry script of
// server-everything ("node script stdio" runs it over stdio, "node script
// streamableHttp" over HTTP on $PORT), installing it if needed. Without node
// or npm it skips t, or fails it when CI=true.
func Everything(t testing.TB) (node, script string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		var dir string
		if dir, err = CacheDir(); err == nil {
			script, err = Install(t.Context(), dir)
		}
	}
	if err != nil {
		var notFound *exec.Error
		missing := errors.As(err, &notFound) && errors.Is(notFound.Err, exec.ErrNotFound) || strings.Contains(err.Error(), "not found in PATH")
		if missing && os.Getenv("CI") != "true" {
			t.Skipf("skipping: node and npm are needed to run %s (%v)", EverythingPackage, err)
		}
		t.Fatalf("server-everything: %v", err)
	}
	return node, script
}
