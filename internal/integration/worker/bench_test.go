package worker

import (
	"testing"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/workerbench"
)

// benchStores are the stores of the worker benchmarks here: PostgreSQL
// (whose claimable push reaches a worker from another Engine), PostgreSQL
// without push (ff_pooler=transaction opens no LISTEN: polling only), and
// Valkey.
func benchStores() []workerbench.Store {
	var out []workerbench.Store
	add := func(name string, url func(testing.TB) string) {
		out = append(out, workerbench.Store{
			Name: name,
			Open: func(b testing.TB) *engine.Engine { return open(b, url(b)) },
			OpenTwo: func(b testing.TB) (*engine.Engine, *engine.Engine) {
				u := url(b)
				return open(b, u), open(b, u)
			},
		})
	}
	for _, be := range backends {
		add(be.name, be.url)
		if be.name == "postgres" {
			add("postgres-nopush", func(b testing.TB) string {
				return withParams(b, be.url(b), postgres.ParamPooler, postgres.PoolerTransaction)
			})
		}
	}
	return out
}

// BenchmarkResumeToStart: see workerbench.ResumeToStart.
func BenchmarkResumeToStart(b *testing.B) {
	for _, s := range benchStores() {
		workerbench.ResumeToStart(b, s)
	}
}

// BenchmarkThroughput: see workerbench.Throughput.
func BenchmarkThroughput(b *testing.B) {
	for _, s := range benchStores() {
		workerbench.Throughput(b, s)
	}
}
