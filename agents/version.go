package agents

import (
	"strconv"
	"strings"

	"mcptower/internal/errs"
)

// DefaultVersion is the version of an agent registered without one.
const DefaultVersion = "1.0.0"

// version is a parsed semantic version (major.minor.patch[-pre][+build]).
type version struct {
	n   [3]int
	pre string
}

// parseVersion accepts "1", "1.2", "1.2.3", an optional leading "v", a
// pre-release after "-" and build metadata after "+" (ignored).
func parseVersion(s string) (version, bool) {
	var v version
	s = strings.TrimPrefix(s, "v")
	s, build, hasBuild := strings.Cut(s, "+")
	s, pre, hasPre := strings.Cut(s, "-")
	if hasBuild && !validIdents(build) || hasPre && !validIdents(pre) {
		return v, false
	}
	v.pre = pre
	parts := strings.Split(s, ".")
	if len(parts) == 0 || len(parts) > 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || (len(p) > 1 && p[0] == '0') {
			return v, false
		}
		v.n[i] = n
	}
	return v, true
}

// validIdents reports whether s is a dot-separated list of non-empty
// [0-9A-Za-z-] identifiers, as semver requires of pre-release and build parts.
func validIdents(s string) bool {
	for id := range strings.SplitSeq(s, ".") {
		if id == "" {
			return false
		}
		for _, c := range id {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
				return false
			}
		}
	}
	return true
}

// compareVersions orders semantic versions; a pre-release sorts before its
// release. Both must be valid.
func compareVersions(a, b string) int {
	va, _ := parseVersion(a)
	vb, _ := parseVersion(b)
	for i := range va.n {
		if va.n[i] != vb.n[i] {
			if va.n[i] < vb.n[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case va.pre == vb.pre:
		return 0
	case va.pre == "":
		return 1
	case vb.pre == "":
		return -1
	}
	return comparePre(va.pre, vb.pre)
}

// comparePre compares dot-separated pre-release identifiers per semver §11.
func comparePre(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		an, aerr := strconv.Atoi(as[i])
		bn, berr := strconv.Atoi(bs[i])
		switch {
		case aerr == nil && berr == nil:
			if an != bn {
				if an < bn {
					return -1
				}
				return 1
			}
		case aerr == nil:
			return -1
		case berr == nil:
			return 1
		default:
			if c := strings.Compare(as[i], bs[i]); c != 0 {
				return c
			}
		}
	}
	switch {
	case len(as) < len(bs):
		return -1
	case len(as) > len(bs):
		return 1
	}
	return 0
}

// ValidName reports whether name is a valid agent (and MCP tool) name:
// 1-128 characters of [A-Za-z0-9_.-] (the MCP tool-name rules).
func ValidName(name string) error {
	if name == "" {
		return errs.E(errs.Invalid, "agent name is empty")
	}
	if len(name) > 128 {
		return errs.E(errs.Invalid, "agent name %q is longer than 128 characters", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return errs.E(errs.Invalid, "agent name %q has character %q; use letters, digits, '_', '-', '.'", name, c)
		}
	}
	return nil
}

// SplitRef splits "name@version" (version may be empty).
func SplitRef(ref string) (name, version string) {
	name, version, _ = strings.Cut(ref, "@")
	return name, version
}

func normalizeSpec(s *Spec) error {
	if err := ValidName(s.Name); err != nil {
		return err
	}
	s.Version = strings.TrimPrefix(s.Version, "v") // v1.2.3 and 1.2.3 are one version
	if s.Version == "" {
		s.Version = DefaultVersion
	}
	if _, ok := parseVersion(s.Version); !ok {
		return errs.E(errs.Invalid, "agent %q: version %q is not a semantic version like 1.2.3", s.Name, s.Version)
	}
	if s.Input != nil && !s.Input.IsObject() {
		return errs.E(errs.Invalid, "agent %q: input schema must describe an object", s.Name)
	}
	return nil
}
