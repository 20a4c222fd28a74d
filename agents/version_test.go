package agents

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want version
		ok   bool
	}{
		{"1.2.3", version{n: [3]int{1, 2, 3}}, true},
		{"v1.2.3", version{n: [3]int{1, 2, 3}}, true},
		{"1", version{n: [3]int{1, 0, 0}}, true},
		{"1.2", version{n: [3]int{1, 2, 0}}, true},
		{"0.0.0", version{}, true},
		{"10.20.30", version{n: [3]int{10, 20, 30}}, true},
		{"1.0.0-rc.1", version{n: [3]int{1, 0, 0}, pre: "rc.1"}, true},
		{"1.0.0-alpha-beta.2", version{n: [3]int{1, 0, 0}, pre: "alpha-beta.2"}, true},
		{"1.0.0+build.7", version{n: [3]int{1, 0, 0}}, true},
		{"1.0.0-rc.1+sha.abc", version{n: [3]int{1, 0, 0}, pre: "rc.1"}, true},

		{"", version{}, false},
		{"v", version{}, false},
		{"latest", version{}, false},
		{"1.2.3.4", version{}, false},
		{"01.2.3", version{}, false},
		{"1.02.3", version{}, false},
		{"1..3", version{}, false},
		{"1.2.", version{}, false},
		{".1.2", version{}, false},
		{"-1.0.0", version{}, false},
		{"1.-2.0", version{}, false},
		{"1.x.0", version{}, false},
		{" 1.0.0", version{}, false},
		{"1.0.0 ", version{}, false},
		{"vv1.0.0", version{}, false},
		{"1.0.0-", version{}, false},
		{"1.0.0-rc..1", version{}, false},
		{"1.0.0-rc.", version{}, false},
		{"1.0.0-rc_1", version{}, false},
		{"1.0.0+", version{}, false},
		{"1.0.0+a..b", version{}, false},
		{"1.0.0@2", version{}, false},
	} {
		got, ok := parseVersion(tc.in)
		if ok != tc.ok {
			t.Errorf("parseVersion(%q) ok = %v, want %v", tc.in, ok, tc.ok)
			continue
		}
		if ok {
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(version{})); diff != "" {
				t.Errorf("parseVersion(%q) (-want +got):\n%s", tc.in, diff)
			}
		}
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int // sign of compare(a, b)
	}{
		{"1.0.0", "1.0.0", 0},
		{"1.10.0", "1.9.0", 1},
		{"1.9.0", "1.10.0", -1},
		{"2.0.0", "1.99.99", 1},
		{"1.0.10", "1.0.9", 1},
		{"1.0.0", "1.0.0-rc.1", 1},
		{"1.0.0-rc.1", "1.0.0", -1},
		{"1.0.0-rc.2", "1.0.0-rc.1", 1},
		{"1.0.0-rc.10", "1.0.0-rc.9", 1}, // numeric identifiers compare as numbers
		{"1.0.0-beta", "1.0.0-alpha", 1},
		{"1.0.0-alpha.1", "1.0.0-alpha", 1}, // more identifiers rank higher
		{"1.0.0-alpha.beta", "1.0.0-alpha.1", 1},
		{"1.0.0-1", "1.0.0-alpha", -1}, // numeric < alphanumeric
		{"1.1.0-rc.1", "1.0.0", 1},
		{"v1.2.3", "1.2.3", 0},
		{"v1.10.0", "1.9.0", 1},
		{"1", "1.0.0", 0},
		{"1.2", "1.1.9", 1},
		{"1.0.0+build.2", "1.0.0+build.1", 0}, // build metadata is ignored
	} {
		if got := compareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := compareVersions(tc.b, tc.a); got != -tc.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d (antisymmetry)", tc.b, tc.a, got, -tc.want)
		}
	}

	// The semver §11 example order, shuffled and sorted.
	want := []string{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "1.10.0", "2.0.0"}
	got := []string{"1.10.0", "1.0.0-beta.11", "1.0.0", "2.0.0", "1.0.0-alpha.beta", "1.0.0-rc.1", "1.0.0-alpha", "1.1.0", "1.0.0-beta", "1.0.1", "1.0.0-beta.2", "1.0.0-alpha.1"}
	slices.SortFunc(got, compareVersions)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sorted versions (-want +got):\n%s", diff)
	}
}
