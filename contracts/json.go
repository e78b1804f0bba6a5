package contracts

import (
	"bytes"
	"encoding/json"
)

// marshal encodes v like json.Marshal but without HTML escaping, so that an
// envelope's bytes do not depend on the caller's encoder settings: the CLI
// and httpapi encode with SetEscapeHTML(false), and an encoder cannot undo
// escaping that a MarshalJSON method already applied.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
