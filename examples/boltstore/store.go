package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// partitions is the store's keystore partition count P. It is recorded in
// the file when the file is created; a file recording another P is refused.
const partitions = 1

// The buckets of a store. Every key that joins several parts separates them
// with a NUL byte, which no execution id, waitpoint id or kid can contain,
// so a prefix "execution_id\x00" selects exactly one execution's records.
var (
	// bucketMeta: "layout" → the layout version; "partitions" → P in decimal.
	bucketMeta = []byte("meta")
	// bucketKeys: "0" (the partition) → keysDoc, the partition's keystore.
	bucketKeys = []byte("keystore")
	// bucketExecutions: execution_id → execDoc, every remembered execution.
	bucketExecutions = []byte("executions")
	// bucketWaitpoints: waitpoint_id → waitpointDoc, every remembered waitpoint.
	bucketWaitpoints = []byte("waitpoints")
	// bucketSignals: execution_id \0 suspension_id \0 seq (8 bytes, big
	// endian) → contracts.Signal, so a prefix scan of one suspension yields
	// its signals in delivery order.
	bucketSignals = []byte("signals")
	// bucketIdempotency: execution_id \0 "s" \0 idempotency_key → suspendRecord;
	// execution_id \0 "d" \0 waitpoint_id \0 idempotency_key → signal_id.
	bucketIdempotency = []byte("idempotency")
	// bucketOrder: suspended_at_ms (8 bytes, big endian) execution_id →
	// state, one entry per execution in state suspended, resumed or claimed,
	// so a cursor walks executions in (suspended_at_ms, execution_id) order
	// for list and claim.
	bucketOrder = []byte("order")
	// bucketTags: tag \0 suspended_at_ms (8 bytes, big endian) execution_id
	// → state, one entry per tag of the suspension of each execution in
	// state suspended, so list_suspended by tag (docs/spec.md §8.6) walks
	// only the executions that carry the tag, in the order of bucketOrder.
	bucketTags = []byte("tags")
)

var allBuckets = [][]byte{bucketMeta, bucketKeys, bucketExecutions, bucketWaitpoints, bucketSignals, bucketIdempotency, bucketOrder, bucketTags}

// layout is the version of the buckets, keys and documents below. A file
// records it when created; a file recording another layout is refused with
// unavailable / schema_mismatch rather than misread. (bbolt has no schema:
// a later layout is reached by an upgrade written for it, upgradeLayout.)
//
// Layout 2 (docs/spec.md §8) adds bucketTags, executions remembered in
// state none (state "", possibly without a suspension), pending waitpoints
// and the signals buffered on them; every field it adds to a document is
// optional, so a layout 1 file reads as layout 2 once bucketTags exists.
//
// Layout 3 (docs/spec.md §8.7) adds revoked kids to the keystore document:
// a kid with "revoked" and no secret. A layout 2 driver would misread one
// (it would fail to open its missing secret, and a rotation would collect
// it and let its name be reused), so it must refuse the file. A layout 2
// file holds no revoked kid and reads as layout 3 as it is.
const layout = "3"

// upgradeLayout maps a layout this driver upgrades in place to the layout
// it becomes. Layout 1 needs only bucketTags, which initStore creates: it
// has no tagged suspension to index; layout 2 needs nothing.
var upgradeLayout = map[string]string{"1": layout, "2": layout}

var (
	keyPartitions = []byte("partitions")
	keyLayout     = []byte("layout")
)

// initStore creates the buckets of a new file and records its layout and P,
// or checks those an existing file recorded.
func initStore(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	if upgradeLayout[string(meta.Get(keyLayout))] == layout {
		if err := meta.Put(keyLayout, []byte(layout)); err != nil {
			return err
		}
	}
	if err := recordOrCheck(meta, keyLayout, layout, func(got []byte) error {
		return driver.SchemaMismatch(fmt.Errorf("the bolt file has layout %q, this driver reads layout %q", got, layout))
	}); err != nil {
		return err
	}
	p := strconv.Itoa(partitions)
	return recordOrCheck(meta, keyPartitions, p, func(got []byte) error {
		return contracts.ErrPartitionCountMismatch.With("partitions: the file was written with P = %s, this driver has P = %s", got, p)
	})
}

// recordOrCheck stores want under key when the key is absent, and otherwise
// returns mismatch(stored value) when the stored value differs.
func recordOrCheck(meta *bolt.Bucket, key []byte, want string, mismatch func(got []byte) error) error {
	got := meta.Get(key)
	switch {
	case got == nil:
		return meta.Put(key, []byte(want))
	case string(got) != want:
		return mismatch(got)
	}
	return nil
}

// --- keystore ---------------------------------------------------------------

var keyPartition0 = []byte("0")

// kidDoc stores one kid. Secret is encoded as base64 by encoding/json; it is
// never logged (contracts.Secret redacts it everywhere else). A revoked kid
// (layout 3, docs/spec.md §8.7) is stored as its name, Revoked and its
// expiry, with no secret. Every other kid's document is byte for byte as in
// layout 2: Revoked is left out, and a stored secret is never empty.
type kidDoc struct {
	Kid         string `json:"kid"`
	Secret      []byte `json:"secret,omitempty"`
	ExpiresAtMs *int64 `json:"expires_at_ms,omitempty"`
	Revoked     bool   `json:"revoked,omitempty"`
}

// keysDoc stores a partition's keystore: driver.PartitionKeys as JSON.
type keysDoc struct {
	Current   *kidDoc  `json:"current"`
	Verifying []kidDoc `json:"verifying"`
}

func loadKeys(tx *bolt.Tx) (driver.PartitionKeys, error) {
	var k driver.PartitionKeys
	raw := tx.Bucket(bucketKeys).Get(keyPartition0)
	if raw == nil {
		return k, nil
	}
	var d keysDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		return k, err
	}
	if d.Current != nil {
		r := d.Current.record()
		k.Current = &r
	}
	for _, v := range d.Verifying {
		k.Verifying = append(k.Verifying, v.record())
	}
	return k, nil
}

func saveKeys(tx *bolt.Tx, k driver.PartitionKeys) error {
	var d keysDoc
	if k.Current != nil {
		c := docOf(*k.Current)
		d.Current = &c
	}
	for _, v := range k.Verifying {
		d.Verifying = append(d.Verifying, docOf(v))
	}
	return putJSON(tx.Bucket(bucketKeys), keyPartition0, d)
}

// record reads a stored kid; a revoked kid has no secret, whatever the
// document holds.
func (d kidDoc) record() driver.KidRecord {
	if d.Revoked {
		return driver.KidRecord{Kid: d.Kid, ExpiresAtMs: d.ExpiresAtMs, Revoked: true}
	}
	return driver.KidRecord{Kid: d.Kid, Secret: contracts.Secret(d.Secret), ExpiresAtMs: d.ExpiresAtMs}
}

// docOf stores a kid; a revoked kid is stored without its secret, so the
// document written by a revocation no longer holds it.
func docOf(r driver.KidRecord) kidDoc {
	if r.Revoked {
		return kidDoc{Kid: r.Kid, ExpiresAtMs: r.ExpiresAtMs, Revoked: true}
	}
	return kidDoc{Kid: r.Kid, Secret: []byte(r.Secret), ExpiresAtMs: r.ExpiresAtMs}
}

// --- executions -------------------------------------------------------------

// execDoc is a remembered execution (state suspended, resumed or claimed,
// or "": remembered in state none, docs/spec.md §8.1) with its latest
// suspension (Suspension.ID "": it never suspended, it only holds pending
// waitpoints). Earlier suspensions are closed; what remains of them
// (waitpoints, signals, idempotency records) is found through Waitpoints
// and the execution's key prefix, and deleted on complete.
type execDoc struct {
	ID               string  `json:"execution_id"`
	State            string  `json:"state"`
	Suspension       suspDoc `json:"suspension"`
	LeaseID          string  `json:"lease_id,omitempty"`
	LeaseExpiresAtMs int64   `json:"lease_expires_at_ms,omitempty"`
	// Reason is the claim reason while claimed (kept across re-claims) and
	// contracts.ReasonCancelled while resumed by cancel_suspension.
	Reason string `json:"reason,omitempty"`
	// Seq numbers the signals of the execution's suspensions in delivery
	// order. Only the latest suspension records signals, so one
	// suspension's signals have consecutive numbers (signalRange).
	Seq int64 `json:"seq"`
	// PendingSeq numbers the signals buffered on pending waitpoints in
	// delivery order; a suspend that uses them renumbers them with Seq.
	PendingSeq int64 `json:"pending_seq,omitempty"`
	// Waitpoints lists every remembered waitpoint id, of every suspension,
	// and every pending waitpoint.
	Waitpoints []string `json:"waitpoints"`
	// Unused lists the pending waitpoints no suspend used yet, except those
	// a create_waitpoint found expired (they can never be used nor count
	// again): at most MaxPendingWaitpoints are live.
	Unused []pendingRef `json:"unused,omitempty"`
	// PendingExpiresAtMs is the latest expires_at_ms of the pending
	// waitpoints the execution made, used or not (ForgetsExpiredPending).
	PendingExpiresAtMs int64 `json:"pending_expires_at_ms,omitempty"`
}

// pendingRef names an unused pending waitpoint and when it expires.
type pendingRef struct {
	ID          string `json:"waitpoint_id"`
	ExpiresAtMs int64  `json:"expires_at_ms"`
}

// suspDoc is the latest suspension of an execution.
type suspDoc struct {
	ID            string `json:"suspension_id"`
	SuspendedAtMs int64  `json:"suspended_at_ms"`
	TimeoutAtMs   *int64 `json:"timeout_at_ms"`
	Condition     string `json:"condition"`
	Waitpoints    int    `json:"waitpoints"` // how many it opened
	Signaled      int    `json:"signaled"`   // waitpoints holding at least one signal
	Signals       int    `json:"signals"`    // signals recorded, for the per-suspension budget
	// PayloadBytes sums len(payload) of the recorded signals, for the
	// payload budget (docs/spec.md §8.3). Documents written before it
	// existed read 0.
	PayloadBytes int64 `json:"payload_bytes"`
	// Closed: resumed, cancelled, answered already_satisfied, or claimed
	// after its timeout.
	Closed bool     `json:"closed"`
	Tags   []string `json:"tags,omitempty"` // docs/spec.md §8.6
}

// decisionState is what contracts' decisions read of e; nil for state none.
func (e *execDoc) decisionState() *driver.ExecutionState {
	if e == nil {
		return nil
	}
	return &driver.ExecutionState{
		ID: e.ID, State: e.State, TimeoutAtMs: e.Suspension.TimeoutAtMs,
		LeaseID: e.LeaseID, LeaseExpiresAtMs: e.LeaseExpiresAtMs, Reason: e.Reason,
	}
}

// loadExec returns the execution, or nil when it is not remembered.
func loadExec(tx *bolt.Tx, id string) (*execDoc, error) {
	return loadDoc[execDoc](tx.Bucket(bucketExecutions), id)
}

// saveExec writes the execution and its index entries (index).
func saveExec(tx *bolt.Tx, e *execDoc) error {
	if err := index(tx, e); err != nil {
		return err
	}
	return putJSON(tx.Bucket(bucketExecutions), []byte(e.ID), e)
}

// index keeps e's entries in the order and tags buckets as its state
// requires: an order entry unless it is in state none (claim and list walk
// it), and one entry per tag of its suspension while it is suspended. The
// keys hold the suspension's suspended_at_ms: a caller replacing the
// suspension removes the old entries first (unindex).
func index(tx *bolt.Tx, e *execDoc) error {
	if e.State != "" {
		if err := tx.Bucket(bucketOrder).Put(orderKey(e), []byte(e.State)); err != nil {
			return err
		}
	}
	tags := tx.Bucket(bucketTags)
	for _, t := range e.Suspension.Tags {
		var err error
		if e.State == contracts.StateSuspended {
			err = tags.Put(tagKey(t, e.Suspension.SuspendedAtMs, e.ID), []byte(e.State))
		} else {
			err = tags.Delete(tagKey(t, e.Suspension.SuspendedAtMs, e.ID))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// unindex removes e's entries from the order and tags buckets.
func unindex(tx *bolt.Tx, e *execDoc) error {
	if err := tx.Bucket(bucketOrder).Delete(orderKey(e)); err != nil {
		return err
	}
	for _, t := range e.Suspension.Tags {
		if err := tx.Bucket(bucketTags).Delete(tagKey(t, e.Suspension.SuspendedAtMs, e.ID)); err != nil {
			return err
		}
	}
	return nil
}

// orderKey is the execution's key in the order bucket.
func orderKey(e *execDoc) []byte {
	return orderKeyOf(e.Suspension.SuspendedAtMs, e.ID)
}

func orderKeyOf(ms int64, id string) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(id)), uint64(ms))
	return append(k, id...)
}

// orderID returns the execution id of an order bucket key.
func orderID(k []byte) string { return string(k[8:]) }

// tagPrefix selects the tags bucket's entries of one tag. No tag contains
// a NUL byte (docs/spec.md §8.6).
func tagPrefix(tag string) []byte { return append([]byte(tag), 0) }

// tagKey is an execution's entry under tag: the tag's prefix and its order
// key, so the entries of one tag sort as bucketOrder does.
func tagKey(tag string, ms int64, id string) []byte {
	return append(tagPrefix(tag), orderKeyOf(ms, id)...)
}

// --- waitpoints -------------------------------------------------------------

// waitpointDoc is a remembered waitpoint: one a suspend opened, or a
// pending one create_waitpoint made (docs/spec.md §8.1), which belongs to
// no suspension (SuspensionID "") until a suspend uses it.
type waitpointDoc struct {
	ExecutionID  string `json:"execution_id"`
	SuspensionID string `json:"suspension_id"`
	Key          string `json:"waitpoint_key"`
	CreatedAtMs  int64  `json:"created_at_ms"`
	Signals      int    `json:"signals"` // signals recorded on it, for the per-waitpoint budget
	// PayloadBytes sums len(payload) of its signals: what a suspension
	// using it while pending starts with (driver.PendingBudget).
	PayloadBytes int64 `json:"payload_bytes,omitempty"`
	Pending      bool  `json:"pending,omitempty"`       // made by create_waitpoint
	ExpiresAtMs  int64 `json:"expires_at_ms,omitempty"` // pending: closed past it while unused
	// TimeoutAtMs is its suspension's, kept for get_waitpoint once a later
	// suspension replaced that one.
	TimeoutAtMs *int64 `json:"timeout_at_ms,omitempty"`
	// Fingerprint is driver.TokenFingerprint of the token last handed out
	// for it, never the token; "" for waitpoints of layout 1.
	Fingerprint string   `json:"token_fingerprint,omitempty"`
	Tags        []string `json:"tags,omitempty"`
}

func (w *waitpointDoc) ref(id string) driver.WaitpointRef {
	return driver.WaitpointRef{ExecutionID: w.ExecutionID, WaitpointID: id, WaitpointKey: w.Key, CreatedAtMs: w.CreatedAtMs}
}

// pendingView is what the decisions of docs/spec.md §8.1 read of w, whose
// id is id.
func (w *waitpointDoc) pendingView(id string) *driver.PendingWaitpoint {
	return &driver.PendingWaitpoint{
		ID: id, ExecutionID: w.ExecutionID, Key: w.Key, CreatedAtMs: w.CreatedAtMs, ExpiresAtMs: w.ExpiresAtMs,
		Used: w.SuspensionID != "", Signals: w.Signals, PayloadBytes: w.PayloadBytes,
	}
}

func saveWaitpoint(tx *bolt.Tx, id string, w *waitpointDoc) error {
	return putJSON(tx.Bucket(bucketWaitpoints), []byte(id), w)
}

// loadWaitpoint returns the waitpoint, or nil when it is not remembered.
func loadWaitpoint(tx *bolt.Tx, id string) (*waitpointDoc, error) {
	return loadDoc[waitpointDoc](tx.Bucket(bucketWaitpoints), id)
}

// --- signals and idempotency records -------------------------------------

// execPrefix selects every signal and idempotency record of an execution.
func execPrefix(executionID string) []byte { return append([]byte(executionID), 0) }

// suspensionPrefix selects the signals of one suspension.
func suspensionPrefix(executionID, suspensionID string) []byte {
	return append(append(execPrefix(executionID), suspensionID...), 0)
}

func signalKey(executionID, suspensionID string, seq int64) []byte {
	return binary.BigEndian.AppendUint64(suspensionPrefix(executionID, suspensionID), uint64(seq))
}

// bufferPrefix selects the signals buffered on one pending waitpoint that
// no suspend used yet: execution_id \0 \0 waitpoint_id \0, which no
// suspension's prefix starts with (no suspension id is empty).
func bufferPrefix(executionID, waitpointID string) []byte {
	return append(append(append(execPrefix(executionID), 0), waitpointID...), 0)
}

// bufferKey is a buffered signal's key: its waitpoint's prefix and its
// number in the execution's PendingSeq (8 bytes, big endian).
func bufferKey(executionID, waitpointID string, pendingSeq int64) []byte {
	return binary.BigEndian.AppendUint64(bufferPrefix(executionID, waitpointID), uint64(pendingSeq))
}

// signalDoc stores a recorded signal. The payload is kept as bytes (base64
// in the document), so it comes back exactly as delivered: a JSON encoding
// of contracts.Signal would HTML-escape it.
type signalDoc struct {
	SignalID       string `json:"signal_id"`
	WaitpointID    string `json:"waitpoint_id"`
	WaitpointKey   string `json:"waitpoint_key"`
	Name           string `json:"name"`
	Payload        []byte `json:"payload"`
	IdempotencyKey string `json:"idempotency_key"`
	DeliveredAtMs  int64  `json:"delivered_at_ms"`
}

func putSignal(tx *bolt.Tx, key []byte, s contracts.Signal) error {
	d := signalDoc{s.SignalID, s.WaitpointID, s.WaitpointKey, s.Name, s.Payload, s.IdempotencyKey, s.DeliveredAtMs}
	return putJSON(tx.Bucket(bucketSignals), key, d)
}

// decodeSignal decodes a stored signalDoc.
func decodeSignal(v []byte) (contracts.Signal, error) {
	var d signalDoc
	if err := json.Unmarshal(v, &d); err != nil {
		return contracts.Signal{}, err
	}
	return contracts.Signal{
		SignalID: d.SignalID, WaitpointID: d.WaitpointID, WaitpointKey: d.WaitpointKey, Name: d.Name,
		Payload: d.Payload, IdempotencyKey: d.IdempotencyKey, DeliveredAtMs: d.DeliveredAtMs,
	}, nil
}

// signalsOf returns the signals of one suspension in delivery order.
func signalsOf(tx *bolt.Tx, executionID, suspensionID string) ([]contracts.Signal, error) {
	return signalRange(tx, executionID, suspensionID, 0, -1)
}

// signalRange returns up to n signals (n < 0: all) of one suspension from
// position start of its delivery order. A suspension's signals have
// consecutive sequence numbers (only the latest suspension, while
// suspended, records signals; the signals its pending waitpoints buffered
// are numbered when it opens; and Seq counts nothing else), so the signal
// at position p has the first signal's sequence plus p: a page is two
// seeks and n reads, however deep the cursor.
func signalRange(tx *bolt.Tx, executionID, suspensionID string, start int64, n int) ([]contracts.Signal, error) {
	out := []contracts.Signal{}
	prefix := suspensionPrefix(executionID, suspensionID)
	c := tx.Bucket(bucketSignals).Cursor()
	k, v := c.Seek(prefix)
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return out, nil
	}
	if start > 0 {
		first := int64(binary.BigEndian.Uint64(k[len(prefix):]))
		k, v = c.Seek(signalKey(executionID, suspensionID, first+start))
	}
	for ; k != nil && bytes.HasPrefix(k, prefix) && (n < 0 || len(out) < n); k, v = c.Next() {
		s, err := decodeSignal(v)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// suspendRecord is a suspend idempotency record: the arguments' fingerprint
// and the outcome to replay, in the form driver.StoredSuspendOutcome gives
// (each token replaced by its kid; no token or MAC is stored, docs/spec.md
// §3). Records written before that hold whole tokens; both replay through
// driver.ReplaySuspendOutcome.
type suspendRecord struct {
	Fingerprint string          `json:"fingerprint"`
	Outcome     json.RawMessage `json:"outcome"`
}

func suspendRecordKey(executionID, idempotencyKey string) []byte {
	return append(append(execPrefix(executionID), 's', 0), idempotencyKey...)
}

func deliveryRecordKey(executionID, waitpointID, idempotencyKey string) []byte {
	k := append(append(execPrefix(executionID), 'd', 0), waitpointID...)
	return append(append(k, 0), idempotencyKey...)
}

// deletePrefix deletes every key of bucket that starts with prefix. Keys are
// collected first: deleting under a moving bbolt cursor may skip keys.
func deletePrefix(bucket *bolt.Bucket, prefix []byte) error {
	var keys [][]byte
	c := bucket.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := bucket.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// --- encoding ---------------------------------------------------------------

// putJSON stores v as JSON under key, without HTML escaping.
func putJSON(bucket *bolt.Bucket, key []byte, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return bucket.Put(key, buf.Bytes())
}

// loadDoc decodes the document stored under key, or returns nil when there
// is none.
func loadDoc[T any](bucket *bolt.Bucket, key string) (*T, error) {
	var v T
	found, err := getJSON(bucket, []byte(key), &v)
	if !found || err != nil {
		return nil, err
	}
	return &v, nil
}

// getJSON decodes the value under key into v and reports whether it exists.
// bbolt's value is only valid inside the transaction; json.Unmarshal copies.
func getJSON(bucket *bolt.Bucket, key []byte, v any) (bool, error) {
	raw := bucket.Get(key)
	if raw == nil {
		return false, nil
	}
	return true, json.Unmarshal(raw, v)
}
