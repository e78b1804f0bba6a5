// Package drivertest holds driver-level scenario tests that the in-repo
// drivers (memory, sqlite) share beyond the conformance suite: finer-grained
// checks of suspend, deliver, observe, list, claim and complete, written once
// and run by each driver's tests through RunSuspensionTests, plus the
// fixture those drivers' own tests use.
//
// Where conformance defines what a backend is, with golden envelopes for
// every driver, these scenarios pin details a driver author wants checked
// while working (boundaries, orderings, concurrency, state left behind). The
// package is internal so that third-party drivers depend only on conformance,
// and so that these tests can change with the in-repo drivers.
//
// A driver runs them from one small test file:
//
//	func TestSuspensions(t *testing.T) {
//		drivertest.RunSuspensionTests(t, drivertest.Harness{
//			Open:     func(t testing.TB, clock *conformance.Clock) driver.Backend { ... },
//			Leftover: func(t testing.TB, b driver.Backend, executionID string) int { ... },
//		})
//	}
package drivertest
