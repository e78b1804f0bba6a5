package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/backend/valkey"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/httpapi"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// sharedStores give a URL two Engines can open at once, for each backend
// whose store can be shared across processes.
var sharedStores = []struct {
	name  string
	store func(b *testing.B) string
}{
	{"sqlite", func(b *testing.B) string { return "sqlite://" + filepath.Join(b.TempDir(), "ff.db") }},
	{"postgres", func(b *testing.B) string {
		return withQuery(b, testenv.NewPostgresSchema(b, testenv.PackageDatabase(b)), "ff_migrate", "auto")
	}},
	{"valkey", func(b *testing.B) string {
		return withQuery(b, testenv.ValkeyURL(b), valkey.OptionPrefix, testenv.KeyPrefix(b))
	}},
}

// BenchmarkLongPollResumeLatency measures, per backend, the time from a
// delivery that resumes an execution to the answer of a long-poll claim
// (POST /v1/admin/claim with wait_ms) that was waiting for it, over a
// loopback HTTP server: ms/resume (mean), p50-ms and p99-ms. The delivery
// goes through the server's own Engine ("same-engine": the Engine wakes
// its watchers itself) or through a second Engine on the same store, as
// another process would ("other-engine": a push from the store where the
// driver has one, PostgreSQL's LISTEN/NOTIFY, else the handler's 1 s poll).
//
//	go test -run '^$' -bench LongPollResumeLatency -benchtime 50x ./httpapi/
func BenchmarkLongPollResumeLatency(b *testing.B) {
	for _, bc := range sharedStores {
		for _, via := range []string{"same-engine", "other-engine"} {
			b.Run(bc.name+"/"+via, func(b *testing.B) {
				ctx := context.Background()
				raw := bc.store(b)
				server := openURL(b, raw)
				deliverer := server
				if via == "other-engine" {
					deliverer = openURL(b, raw)
					b.Cleanup(func() { _ = deliverer.Close() })
				}
				if _, err := server.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: contracts.Secret(make([]byte, 32))}); err != nil {
					b.Fatal(err)
				}
				h := httpapi.New(server, httpapi.Options{AdminToken: adminToken, Logger: slog.New(slog.DiscardHandler)})
				srv := httptest.NewServer(h)
				b.Cleanup(func() { srv.Close(); _ = h.Close(); _ = server.Close() })

				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for i := range b.N {
					b.StopTimer()
					exec := fmt.Sprintf("lp-%d", i)
					sus, err := server.Suspend(ctx, contracts.SuspendArgs{ExecutionID: exec, Waitpoints: []contracts.WaitpointSpec{{Key: "go"}}})
					if err != nil {
						b.Fatal(err)
					}
					answer := make(chan contracts.ClaimOutcome, 1)
					go func() { answer <- longPollClaim(b, srv.URL) }()
					time.Sleep(20 * time.Millisecond) // the claim is waiting by now
					b.StartTimer()
					start := time.Now()
					wp := sus.Waitpoints[0]
					if _, err := deliverer.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: exec, WaitpointID: wp.WaitpointID, Token: wp.Token, Name: "go"}); err != nil {
						b.Fatal(err)
					}
					c := <-answer
					lat = append(lat, time.Since(start))
					b.StopTimer()
					if c.ExecutionID != exec {
						b.Fatalf("claimed %+v, want %s", c, exec)
					}
					if _, err := server.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: exec, LeaseID: c.LeaseID}); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				b.StopTimer()
				reportLatencies(b, lat)
			})
		}
	}
}

// longPollClaim claims through the HTTP API, waiting up to 10 s.
func longPollClaim(b *testing.B, base string) contracts.ClaimOutcome {
	req, err := http.NewRequest("POST", base+"/v1/admin/claim", strings.NewReader(`{"worker_id":"bench","wait_ms":10000}`))
	if err != nil {
		b.Error(err)
		return contracts.ClaimOutcome{}
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Error(err)
		return contracts.ClaimOutcome{}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var c contracts.ClaimOutcome
	if err := json.Unmarshal(body, &c); err != nil || resp.StatusCode != http.StatusOK {
		b.Errorf("claim = %d %s", resp.StatusCode, body)
	}
	return c
}

// reportLatencies reports the mean, median and 99th percentile in ms.
func reportLatencies(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(sum/time.Duration(len(lat))), "ms/resume")
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[min(len(lat)-1, len(lat)*99/100)]), "p99-ms")
	b.ReportMetric(0, "ns/op") // the loop's time includes the waits; ms/resume is the figure
}
