package conformance

import "testing"

// TEMPORARY placeholder owned by the signals engineer, who replaces this
// file with the suspension and signal scenarios (CONTRACT.md §5).

// suspensionScenarios runs the suspension and signal scenarios.
func suspensionScenarios(t *testing.T, h Harness) {}

// signalConcurrencyScenarios runs the concurrent signal delivery scenarios.
func signalConcurrencyScenarios(t *testing.T, h Harness) {}
