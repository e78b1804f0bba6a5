package boltstore_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/examples/boltstore"
)

// Given a suspend under an idempotency key, then its record holds the kid,
// no token and no MAC (docs/spec.md §3); and when the record is rewritten
// in the form earlier versions stored, with whole tokens, then a replay
// still answers the first outcome byte for byte.
func TestSuspendRecordsHoldNoTokenAndOldRecordsReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ff.bolt")
	b, err := boltstore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	e := engine.New(b)
	if _, err := e.Seed(ctx, fx); err != nil {
		t.Fatal(err)
	}
	a := contracts.SuspendArgs{ExecutionID: "e1", Condition: contracts.ConditionAny, IdempotencyKey: "boot-1",
		Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}}}
	first, err := e.Suspend(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(first)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	recKey := append([]byte("e1\x00s\x00"), "boot-1"...)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		bucket := tx.Bucket([]byte("idempotency"))
		var rec map[string]json.RawMessage
		if err := json.Unmarshal(bucket.Get(recKey), &rec); err != nil {
			return err
		}
		for _, w := range first.Waitpoints {
			if strings.Contains(string(rec["outcome"]), w.Token[len(fx.Kid)+1:]) {
				t.Errorf("the suspend record holds the MAC of waitpoint %s", w.WaitpointKey)
			}
		}
		if !strings.Contains(string(rec["outcome"]), `"token":"k1"`) {
			t.Errorf("the suspend record does not hold the kid: %s", rec["outcome"])
		}
		rec["outcome"] = want // the form earlier versions stored
		raw, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return bucket.Put(recKey, raw)
	})
	if cerr := db.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}

	b, err = boltstore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	e = engine.New(b)
	defer e.Close()
	replay, err := e.Suspend(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(replay); string(got) != string(want) {
		t.Fatalf("replay of an old record:\n got %s\nwant %s", got, want)
	}
}
