package boltstore

import (
	"bytes"
	"encoding/json"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/flowfabric/flowfabric-go/driver"
)

// Leftover counts the keys of the store behind b that still name
// executionID, for conformance.Harness.Leftover (conformance_test.go): its
// execution document, its entry in the order bucket, its entries in the
// tags bucket, the waitpoints that name it (pending ones included), and its
// signals (buffered ones included) and idempotency records (keys under
// executionID + NUL). It reads in a transaction of its own, around the
// driver's methods; b must be a *Backend.
func Leftover(t testing.TB, b driver.Backend, executionID string) int {
	t.Helper()
	bb, ok := b.(*Backend)
	if !ok {
		t.Fatalf("boltstore.Leftover: %T is not a *boltstore.Backend", b)
	}
	n := 0
	err := bb.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketExecutions).Get([]byte(executionID)) != nil {
			n++
		}
		if err := tx.Bucket(bucketOrder).ForEach(func(k, _ []byte) error {
			if orderID(k) == executionID {
				n++
			}
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketTags).ForEach(func(k, _ []byte) error {
			if i := bytes.IndexByte(k, 0); i >= 0 && orderID(k[i+1:]) == executionID {
				n++
			}
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketWaitpoints).ForEach(func(_, v []byte) error {
			var w waitpointDoc
			if err := json.Unmarshal(v, &w); err != nil {
				return err
			}
			if w.ExecutionID == executionID {
				n++
			}
			return nil
		}); err != nil {
			return err
		}
		prefix := execPrefix(executionID)
		for _, name := range [][]byte{bucketSignals, bucketIdempotency} {
			c := tx.Bucket(name).Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				n++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("boltstore.Leftover: %v", err)
	}
	return n
}
