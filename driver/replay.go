package driver

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Tokens are never stored (docs/spec.md §3): a suspend idempotency record
// keeps the outcome with each waitpoint's token replaced by the kid that
// signed it, and a replay signs the tokens again, which gives the same
// bytes because tokens are deterministic.

// StoredSuspendOutcome is the form of a suspend outcome an idempotency
// record keeps: its JSON envelope with every token replaced by its kid.
func StoredSuspendOutcome(out contracts.SuspendOutcome) ([]byte, error) {
	c := out
	c.Waitpoints = make([]contracts.WaitpointOutcome, len(out.Waitpoints))
	for i, w := range out.Waitpoints {
		kid, _, _ := strings.Cut(w.Token, ":")
		w.Token = kid
		c.Waitpoints[i] = w
	}
	// Without HTML escaping, as envelopes are written: an already_satisfied
	// outcome holds payloads, which a replay must answer byte for byte.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// StoredOutcomeKid returns the kid that signed the tokens of a stored
// outcome (the driver opens its secret for ReplaySuspendOutcome), or ""
// when the outcome has no waitpoint.
func StoredOutcomeKid(stored []byte) (string, error) {
	var out contracts.SuspendOutcome
	if err := json.Unmarshal(stored, &out); err != nil {
		return "", err
	}
	if len(out.Waitpoints) == 0 {
		return "", nil
	}
	kid, _, _ := strings.Cut(out.Waitpoints[0].Token, ":")
	return kid, nil
}

// ReplaySuspendOutcome rebuilds the outcome of a stored suspend record,
// signing each token again with its kid's record in keys (opened secrets)
// at nowMs. A kid that is no longer usable (collected, or past its grace)
// answers state / suspend_replay_expired: its tokens could not be used.
// Records written before tokens stopped being stored hold whole tokens;
// their kid is read the same way.
func ReplaySuspendOutcome(stored []byte, keys PartitionKeys, nowMs int64) (contracts.SuspendOutcome, error) {
	var out contracts.SuspendOutcome
	if err := json.Unmarshal(stored, &out); err != nil {
		return contracts.SuspendOutcome{}, contracts.ErrInternal.With("suspend: the stored outcome does not decode").Wrapping(err)
	}
	for i, w := range out.Waitpoints {
		kid, _, _ := strings.Cut(w.Token, ":")
		rec := keys.Find(kid)
		if rec == nil || !rec.Usable(nowMs) {
			return contracts.SuspendOutcome{}, contracts.ErrSuspendReplayExpired.With(
				"idempotency_key: the first suspend's tokens were signed by kid %q, which no longer verifies; suspend with another key", kid)
		}
		out.Waitpoints[i].Token = SignToken(kid, rec.Secret, WaitpointInput(kid, out.ExecutionID, w.WaitpointID, w.WaitpointKey, w.CreatedAtMs))
	}
	return out, nil
}

// PageSignals builds an observe_signals page from rows, the signals of the
// suspension in delivery order starting at position start (the cursor's
// Position, 0 without one); drivers fetch limit+1 rows so that the page
// knows whether another follows.
func PageSignals(executionID, suspensionID string, rows []contracts.Signal, start int64, limit int) contracts.ObserveSignalsResult {
	res := contracts.ObserveSignalsResult{ExecutionID: executionID, SuspensionID: suspensionID, Signals: make([]contracts.Signal, 0, min(len(rows), limit))}
	if len(rows) > limit {
		c := contracts.EncodeSignalCursor(contracts.SignalCursor{SuspensionID: suspensionID, Position: start + int64(limit)})
		res.NextCursor = &c
		rows = rows[:limit]
	}
	res.Signals = append(res.Signals, rows...)
	return res
}

// ObserveStart is where a page of observe_signals starts for the latest
// suspension suspensionID: 0 without a cursor, the cursor's position for a
// cursor of that suspension, and ok false for a cursor of another
// suspension (the driver answers an empty last page).
func ObserveStart(args contracts.ObserveSignalsArgs, suspensionID string) (start int64, ok bool) {
	if args.Cursor == "" {
		return 0, true
	}
	c, err := contracts.DecodeSignalCursor(args.Cursor)
	if err != nil || c.SuspensionID != suspensionID {
		return 0, false
	}
	return c.Position, true
}
