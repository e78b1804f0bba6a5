package sqlite

import (
	"database/sql"
	sqldriver "database/sql/driver"
	"fmt"
	"time"

	"github.com/flowfabric/flowfabric-go/driver"
)

// Stored ids (schema version 6, migrations/sqlite/0006_binary_ids.up.sql).
// The ids the backend generates (driver.NewID: waitpoint, suspension,
// signal and lease ids) are canonical UUIDs, 36 characters of text; the
// store keeps each one as its 16 bytes, in columns typed ANY, and any other
// value as the text it is. Every statement binds an id as storedID and
// every scan reads one through scanID or nullID, so that the conversion is
// invisible above this file:
//
//   - a canonical UUID (lowercase hex, hyphens at 8, 13, 18 and 23: the
//     rule of contracts.ValidateUUID, which the Engine applies to every id
//     a caller passes) is bound as its 16 bytes, and 16 stored bytes read
//     back as exactly that text;
//   - any other value (an id a caller made up, in another case or form,
//     or a row written before version 6 that was not a canonical UUID) is
//     bound and read as text. A BLOB never equals a TEXT in SQLite, so a
//     made-up id matches no stored UUID, as it matched none before.
//
// The migration converts the stored ids by the same rule (a GLOB of 32
// lowercase hex digits and 4 hyphens), so rows written before and after it
// compare alike. Nothing orders rows by these ids (pages and claims order
// by suspended_at_ms and execution_id, signals by their position), so
// their sort order, which differs between TEXT and BLOB, matters nowhere.

// storedID is an id as a statement binds it.
type storedID string

var _ sqldriver.Valuer = storedID("")

// Value returns the 16 bytes of a canonical UUID, the text otherwise.
func (id storedID) Value() (sqldriver.Value, error) {
	if b, ok := uuidBytes(string(id)); ok {
		return b, nil
	}
	return string(id), nil
}

// optionalID binds id as storedID, or NULL when it is empty.
func optionalID(id string) any {
	if id == "" {
		return nil
	}
	return storedID(id)
}

// uuidBytes returns the 16 bytes of s when s is a canonical UUID in
// lowercase, as driver.NewID writes them.
func uuidBytes(s string) ([]byte, bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return nil, false
	}
	var b [16]byte
	for j, i := range uuidHexAt {
		hi, ok1 := lowerHex(s[i])
		lo, ok2 := lowerHex(s[i+1])
		if !ok1 || !ok2 {
			return nil, false
		}
		b[j] = hi<<4 | lo
	}
	return b[:], true
}

// uuidHexAt are the offsets of the 16 hex pairs of a canonical UUID.
var uuidHexAt = [16]int{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

func lowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// idText reads a stored id: 16 bytes as their canonical UUID, text as it
// is. The driver hands text that reads as an RFC 3339 time in a column
// without a declared type over as a time.Time; it formats back to the same
// text.
func idText(src any) (string, bool, error) {
	switch v := src.(type) {
	case nil:
		return "", false, nil
	case string:
		return v, true, nil
	case []byte:
		if len(v) != 16 {
			return "", false, fmt.Errorf("sqlite: a stored id of %d bytes (want 16)", len(v))
		}
		return driver.FormatID([16]byte(v)), true, nil
	case time.Time:
		return v.Format(time.RFC3339Nano), true, nil
	}
	return "", false, fmt.Errorf("sqlite: a stored id of type %T", src)
}

// scanID scans a NOT NULL id column into *dst.
type scanID struct{ dst *string }

var _ sql.Scanner = scanID{}

func (s scanID) Scan(src any) error {
	v, ok, err := idText(src)
	if err == nil && !ok {
		err = fmt.Errorf("sqlite: a NULL id")
	}
	*s.dst = v
	return err
}

// nullID scans an id column that may be NULL (Valid false, String "").
type nullID struct {
	String string
	Valid  bool
}

var _ sql.Scanner = (*nullID)(nil)

func (n *nullID) Scan(src any) error {
	var err error
	n.String, n.Valid, err = idText(src)
	return err
}
