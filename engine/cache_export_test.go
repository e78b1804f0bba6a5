package engine

import "time"

// SetKeystoreCacheMonotonic replaces the keystore cache's monotonic clock,
// so tests move it by hand. It must be called before the Engine is used.
func SetKeystoreCacheMonotonic(e *Engine, mono func() time.Duration) {
	if e.ks != nil {
		e.ks.mono, e.ks.manual = mono, true
	}
}

// KeystoreCacheActive reports whether e serves Sign and Verify from its cache.
func KeystoreCacheActive(e *Engine) bool { return e.keystoreCache() != nil }
