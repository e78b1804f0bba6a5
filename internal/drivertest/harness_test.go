package drivertest

import (
	"strings"
	"testing"
)

// TestScenarioNames keeps the subtest names usable with -run: unique, and
// without the Test prefix their former top-level tests had.
func TestScenarioNames(t *testing.T) {
	seen := map[string]bool{}
	for _, sc := range suspensionScenarios {
		if sc.name == "" || strings.HasPrefix(sc.name, "Test") || strings.ContainsAny(sc.name, " /") || sc.run == nil {
			t.Errorf("scenario %q: want a non-empty name without Test prefix, spaces or slashes, and a function", sc.name)
		}
		if seen[sc.name] {
			t.Errorf("scenario %q listed twice", sc.name)
		}
		seen[sc.name] = true
	}
}
