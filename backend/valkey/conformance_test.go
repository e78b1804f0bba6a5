package valkey

import (
	"testing"

	"github.com/flowfabric/flowfabric-go/conformance"
)

// TestConformance runs the whole suite against a standalone server and a
// cluster, with the default 256 partitions and with one partition.
func TestConformance(t *testing.T) {
	for _, s := range servers {
		for _, p := range []int{256, 1} {
			t.Run(s.name+"/P"+itoa(p), func(t *testing.T) {
				t.Parallel()
				s.url(t) // skip early when the server is missing
				conformance.Run(t, harness(s, p))
			})
		}
	}
}
