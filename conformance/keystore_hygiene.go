package conformance

import (
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// recorder collects every error text, error envelope and result envelope
// the scenarios produce, so that one check can assert that none of them
// reveals a secret (docs/spec.md §2: details never contain secret bytes or
// hex) and that no error quotes a token's MAC. Safe for concurrent use.
type recorder struct {
	mu      sync.Mutex
	results []string
	errs    []string
	macs    []string
	extra   []fixture // secrets made by scenarios beyond the package fixtures
}

func newRecorder() *recorder { return &recorder{} }

// call records the envelope of one call's result or error.
func (r *recorder) call(out any, err error) {
	if err != nil {
		r.err(err)
		return
	}
	r.mu.Lock()
	r.results = append(r.results, ksJSON(out), fmt.Sprintf("%+v", out))
	r.mu.Unlock()
	if rr, ok := out.(contracts.RotateAllResult); ok {
		for _, e := range rr.Entries {
			if e.Error != nil {
				r.err(e.Error)
			}
		}
	}
}

// err records an error's text in every form a program might print it.
func (r *recorder) err(err error) {
	if err == nil {
		return
	}
	texts := []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), ksJSON(err)}
	r.mu.Lock()
	r.errs = append(r.errs, texts...)
	r.mu.Unlock()
}

// alsoSecret adds a scenario-made secret to the ones no text may contain.
func (r *recorder) alsoSecret(f fixture) {
	r.mu.Lock()
	r.extra = append(r.extra, f)
	r.mu.Unlock()
}

// forbidInErrors adds a token MAC that no error text may contain.
func (r *recorder) forbidInErrors(mac string) {
	if mac == "" {
		return
	}
	r.mu.Lock()
	r.macs = append(r.macs, mac)
	r.mu.Unlock()
}

// macOf returns the MAC part of a well-formed-looking token, else "".
func macOf(token string) string {
	if i := strings.LastIndexByte(token, ':'); i >= 0 && len(token)-i-1 >= 16 {
		return token[i+1:]
	}
	return ""
}

// secretForms are the ways a fixture secret could leak: full and half hex
// in both letter cases, raw bytes and base64.
func secretForms(f fixture) []string {
	half := f.Hex[:len(f.Hex)/2]
	return []string{
		f.Hex, strings.ToUpper(f.Hex), half, strings.ToUpper(half),
		string(f.Secret), base64.StdEncoding.EncodeToString(f.Secret),
	}
}

// check asserts that no recorded text holds a fixture secret and no error
// text holds a presented MAC (or its first 16 hex digits).
func (r *recorder) check(t *testing.T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.results)+len(r.errs) == 0 {
		t.Skip("no keystore scenario ran")
	}
	all := append(append([]string(nil), r.results...), r.errs...)
	secrets := append(append([]fixture(nil), fixtures...), r.extra...)
	for _, f := range secrets {
		for _, form := range secretForms(f) {
			for _, s := range all {
				// not assert.NotContains: the report quotes at most 200
				// bytes of the text, which may be a 64 KiB payload
				if strings.Contains(s, form) {
					assert.Failf(t, "a secret leaked", "the secret of fixture %s leaked into an envelope or error text: %.200q", f.Kid, s)
				}
			}
		}
	}
	for _, mac := range r.macs {
		for _, s := range r.errs {
			if strings.Contains(s, mac[:16]) {
				assert.Failf(t, "a MAC leaked", "an error text quotes a presented token's MAC: %.200q", s)
			}
		}
	}
	t.Logf("checked %d result and %d error texts against %d fixture secrets and %d MACs",
		len(r.results), len(r.errs), len(secrets), len(r.macs))
}
