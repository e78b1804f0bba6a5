package worker_test

import (
	"testing"

	"github.com/flowfabric/flowfabric-go/internal/workerbench"
)

// The worker benchmarks (internal/workerbench) on the embedded stores;
// internal/integration/worker runs them on PostgreSQL and Valkey.

func BenchmarkResumeToStart(b *testing.B) {
	for _, s := range stores {
		workerbench.ResumeToStart(b, workerbench.Store{Name: s.name, Open: s.open, OpenTwo: s.openTwo})
	}
}

func BenchmarkThroughput(b *testing.B) {
	for _, s := range stores {
		workerbench.Throughput(b, workerbench.Store{Name: s.name, Open: s.open, OpenTwo: s.openTwo})
	}
}
