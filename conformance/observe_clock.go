package conformance

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// sigObserveClockScenarios are the observe_signals scenarios of the
// clock-controlled group (docs/spec.md §5).
func sigObserveClockScenarios(t *testing.T, s sigSuite) {
	s.clockScenario(t, "DeliveryOrderWithinOneMillisecond", "several deliveries within one millisecond", observeDeliveryOrder)
	s.clockScenario(t, "CallerCannotChangeStoredPayload", "delivered_at_ms compared with the clock", observeStoredPayload)
}

// observeDeliveryOrder: signals delivered within one millisecond to
// waitpoints in another order than the suspension's (c, a, c, b) come back
// from observe_signals and claim in delivery order, not by waitpoint or by
// signal_id.
func observeDeliveryOrder(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	s := w.mustSuspend("suspend", suspendArgs("order-1", contracts.ConditionAll, "a", "b", "c"))
	var want []string
	for _, key := range []string{"c", "a", "c", "b"} {
		d := w.mustDeliver("deliver_"+key, signalTo(s, key, "tick", ""))
		want = append(want, d.SignalID)
	}
	ids := func(signals []contracts.Signal) []string {
		out := []string{}
		for _, sg := range signals {
			out = append(out, sg.SignalID)
			require.Equal(t, w.nowMs(), sg.DeliveredAtMs, "signal %s: delivered_at_ms is the backend's now", sg.SignalID)
		}
		return out
	}
	o := w.mustObserve("observe", "order-1")
	require.Equal(t, want, ids(o.Signals), "observe: want the signals in delivery order")
	c := w.mustClaim("claim", "worker-1", 60_000)
	require.Equal(t, want, ids(c.Signals), "claim: want the signals in delivery order")
	w.golden("signals_observe_delivery_order")
}

// observeStoredPayload: a signal's payload is stored as a copy. The delivery
// goes to the driver directly (the Engine compacts the payload into a buffer
// of its own); when the caller then changes the bytes it delivered, or the
// bytes observe_signals gave it, a later observe_signals still answers the
// delivered payload, stamped with the backend's now.
func observeStoredPayload(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	s := w.mustSuspend("suspend", suspendArgs("payload-2", contracts.ConditionAny, "a"))
	d := signalTo(s, "a", "note", "")
	d.Payload = json.RawMessage(`"abc"`)
	w.rec.forbidInErrors(macOf(d.Token))
	out, err := w.e.Backend().DeliverSignal(ctx(), d)
	w.record("deliver_through_the_driver", out, err)
	require.NoError(t, err, "deliver_through_the_driver")
	d.Payload[1] = 'X'

	o := w.mustObserve("observe", "payload-2")
	require.Len(t, o.Signals, 1, "observe: want the signal")
	require.Equal(t, `"abc"`, string(o.Signals[0].Payload), "observe: the payload changed with the caller's argument")
	require.Equal(t, w.nowMs(), o.Signals[0].DeliveredAtMs, "observe: delivered_at_ms is the backend's now")
	o.Signals[0].Payload[1] = 'Y'
	o = w.mustObserve("observe_again", "payload-2")
	require.Equal(t, `"abc"`, string(o.Signals[0].Payload), "observe_again: the payload changed with an earlier answer")
	w.golden("signals_observe_stored_payload")
}
