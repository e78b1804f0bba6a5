package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// loadDuration is how long the load test delivers: 10 s by default,
// FF_LOAD_DURATION to change it, 2 s with -short.
func loadDuration(t *testing.T) time.Duration {
	if s := os.Getenv("FF_LOAD_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("FF_LOAD_DURATION: %v", err)
		}
		return d
	}
	if testing.Short() {
		return 2 * time.Second
	}
	return 10 * time.Second
}

// TestLoadLosesNoSignal has 16 clients deliver signals over HTTP for a
// bounded time, each replaying some idempotency keys, then checks with
// observe_signals that every accepted signal is recorded exactly once and
// every duplicate named the original.
func TestLoadLosesNoSignal(t *testing.T) {
	const clients, perExecution = 16, 400
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			a := newAPI(t, bc.open(t), adminToken)
			a.ok("POST", "/v1/admin/keystore/seed", `{"kid":"k1","secret_hex":"`+secretHex+`"}`, nil)
			deadline := time.Now().Add(loadDuration(t))

			var mu sync.Mutex
			accepted := map[string][]string{} // execution -> accepted signal ids in order
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- runLoadClient(a, c, perExecution, deadline, func(exec, id string) {
						mu.Lock()
						accepted[exec] = append(accepted[exec], id)
						mu.Unlock()
					})
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			total := 0
			for exec, ids := range accepted {
				var obs contracts.ObserveSignalsResult
				a.ok("GET", "/v1/admin/executions/"+exec+"/signals", "", &obs)
				if len(obs.Signals) != len(ids) {
					t.Fatalf("%s: %d signals recorded, %d accepted", exec, len(obs.Signals), len(ids))
				}
				seen := map[string]bool{}
				for _, s := range obs.Signals {
					if seen[s.SignalID] {
						t.Fatalf("%s: signal %s recorded twice", exec, s.SignalID)
					}
					seen[s.SignalID] = true
				}
				for _, id := range ids {
					if !seen[id] {
						t.Fatalf("%s: accepted signal %s was lost", exec, id)
					}
				}
				total += len(ids)
			}
			t.Logf("%s: %d signals accepted by %d clients, all recorded once", bc.name, total, clients)
			if total == 0 {
				t.Fatal("no signal was delivered")
			}
		})
	}
}

// runLoadClient suspends its own executions (condition "all", so deliveries
// to one waitpoint keep it open) and delivers to them until the deadline,
// replaying every fifth idempotency key.
func runLoadClient(a *api, client, perExecution int, deadline time.Time, record func(exec, id string)) error {
	for n := 0; time.Now().Before(deadline); n++ {
		exec := fmt.Sprintf("load-%d-%d", client, n)
		status, _, body := a.do("POST", "/v1/admin/executions/"+exec+"/suspend", adminToken, `{"waitpoints":[{"key":"a"},{"key":"b"}],"condition":"all"}`)
		var sus contracts.SuspendOutcome
		if err := json.Unmarshal([]byte(body), &sus); status != http.StatusOK || err != nil {
			return fmt.Errorf("suspend %s = %d %s", exec, status, body)
		}
		wp := sus.Waitpoints[0]
		path := "/v1/executions/" + exec + "/waitpoints/" + wp.WaitpointID + "/signals"
		ids := map[string]string{}
		for i := 0; i < perExecution && time.Now().Before(deadline); i++ {
			key := fmt.Sprintf("k%d", i)
			if i%5 == 4 {
				key = fmt.Sprintf("k%d", i-1) // a replay
			}
			status, _, body := a.do("POST", path, wp.Token, `{"name":"tick","payload":`+fmt.Sprint(i)+`,"idempotency_key":"`+key+`"}`)
			var out contracts.DeliverSignalOutcome
			if err := json.Unmarshal([]byte(body), &out); status != http.StatusOK || err != nil {
				return fmt.Errorf("deliver %s/%s = %d %s", exec, key, status, body)
			}
			switch {
			case out.Outcome == contracts.OutcomeAccepted && ids[key] == "":
				ids[key] = out.SignalID
				record(exec, out.SignalID)
			case out.Outcome == contracts.OutcomeDuplicate && ids[key] == out.SignalID:
			default:
				return fmt.Errorf("deliver %s/%s: unexpected %s (known id %q)", exec, key, strings.TrimSpace(body), ids[key])
			}
		}
	}
	return nil
}
