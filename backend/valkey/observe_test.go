package valkey

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// observePages pages through observe_signals with limit until next_cursor
// is null, counting the script calls each page takes.
func observePages(t *testing.T, b *Backend, rt *roundTrips, id string, limit int) (pages []contracts.ObserveSignalsResult) {
	t.Helper()
	cursor := ""
	for range 100 {
		rt.start()
		page, err := b.ObserveSignals(bg, contracts.ObserveSignalsArgs{ExecutionID: id, Limit: limit, Cursor: cursor})
		singles, pipelines, _, _ := rt.stop()
		require.NoError(t, err)
		require.Equal(t, [2]int{1, 0}, [2]int{singles, pipelines}, "page %d: one script call", len(pages))
		require.LessOrEqual(t, len(page.Signals), limit)
		pages = append(pages, page)
		if page.NextCursor == nil {
			return pages
		}
		cursor = *page.NextCursor
	}
	t.Fatal("observe_signals never reached its last page")
	return nil
}

// observe_signals pages through the latest suspension's signals in
// delivery order, each page one script call reading limit+1 signals by
// position; a cursor of an earlier suspension answers an empty last page.
func TestObserveSignalsPages(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		rt := newRoundTrips()
		_, b := seededEngine(t, s, 256, rt)
		loadAllScripts(t, b)
		// given 25 signals in one suspension
		sus := suspendAll(t, b, "pages-1", "a", "b")
		var want []string
		for i := range 25 {
			d, err := deliverTo(b, sus, []string{"a", "b"}[i%2], strconv.Itoa(i), "", contracts.SignalLimits{})
			require.NoError(t, err)
			want = append(want, d.SignalID)
		}

		t.Run("InDeliveryOrder", func(t *testing.T) {
			for _, limit := range []int{7, 5, 25, 1000} {
				// when paged with limit, then the pages hold every signal once, in order
				pages := observePages(t, b, rt, "pages-1", limit)
				require.Len(t, pages, (25+limit-1)/limit, "limit %d: pages", limit)
				var got []string
				for i, p := range pages {
					require.Equal(t, sus.SuspensionID, p.SuspensionID)
					for j, sig := range p.Signals {
						require.Equal(t, strconv.Itoa(len(got)), string(sig.Payload), "limit %d: page %d signal %d", limit, i, j)
						got = append(got, sig.SignalID)
					}
				}
				require.Equal(t, want, got, "limit %d", limit)
			}
		})

		t.Run("ReadsOnlyThePage", func(t *testing.T) {
			// the script answers the suspension_id and limit+1 signals from the cursor's position
			p := driver.PartitionOf("pages-1", b.parts)
			v, err := b.run(bg, scriptObserve, p, "pages-1", sus.SuspensionID, "7", "14")
			require.NoError(t, err)
			require.Len(t, v, 1+8)
			rows, err := decodeSignals(v[1:])
			require.NoError(t, err)
			require.Equal(t, want[7], rows[0].SignalID)
		})

		t.Run("CursorPastTheEnd", func(t *testing.T) {
			c := contracts.EncodeSignalCursor(contracts.SignalCursor{SuspensionID: sus.SuspensionID, Position: 1 << 62})
			page, err := b.ObserveSignals(bg, contracts.ObserveSignalsArgs{ExecutionID: "pages-1", Limit: 10, Cursor: c})
			require.NoError(t, err)
			require.Empty(t, page.Signals)
			require.Nil(t, page.NextCursor)
		})

		t.Run("CursorOfAnEarlierSuspension", func(t *testing.T) {
			// given a cursor into the first suspension, and the execution suspended again
			first, err := b.ObserveSignals(bg, contracts.ObserveSignalsArgs{ExecutionID: "pages-1", Limit: 10})
			require.NoError(t, err)
			require.NotNil(t, first.NextCursor)
			_, err = deliverTo(b, sus, "never", "", "", contracts.SignalLimits{})
			require.NoError(t, err)
			c, err := b.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60000})
			require.NoError(t, err)
			require.Equal(t, "pages-1", c.ExecutionID)
			again, err := b.Suspend(bg, contracts.SuspendArgs{ExecutionID: "pages-1", Condition: contracts.ConditionAny,
				Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, LeaseID: &c.LeaseID})
			require.NoError(t, err)
			deliver(t, b, again, 0, contracts.DeliverSignalArgs{})
			// when observed with the old cursor, then the page is empty and last, of the new suspension
			page, err := b.ObserveSignals(bg, contracts.ObserveSignalsArgs{ExecutionID: "pages-1", Limit: 10, Cursor: *first.NextCursor})
			require.NoError(t, err)
			require.Equal(t, again.SuspensionID, page.SuspensionID)
			require.Empty(t, page.Signals)
			require.NotNil(t, page.Signals, "signals encode as []")
			require.Nil(t, page.NextCursor)
			// and without a cursor, the new suspension's signal
			page, err = b.ObserveSignals(bg, contracts.ObserveSignalsArgs{ExecutionID: "pages-1", Limit: 10})
			require.NoError(t, err)
			require.Len(t, page.Signals, 1)
		})

		t.Run("UnknownExecution", func(t *testing.T) {
			_, err := b.ObserveSignals(bg, contracts.ObserveSignalsArgs{ExecutionID: "pages-none", Limit: 10})
			require.ErrorIs(t, err, contracts.ErrExecutionNotFound)
		})
	})
}
