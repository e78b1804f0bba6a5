package httpapi

import "time"

// SetClaimPollInterval sets how often h's waiting claims try again without
// a wake-up. Call it before any claim waits.
func SetClaimPollInterval(h *Handler, d time.Duration) { h.claims.poll = d }

// SetClaimWatchLinger sets how long h's claimable watcher keeps running
// after the last waiting claim.
func SetClaimWatchLinger(h *Handler, d time.Duration) {
	h.claims.mu.Lock()
	defer h.claims.mu.Unlock()
	h.claims.linger = d
}

// ClaimWaiters returns how many claims wait on h, and whether h's
// claimable watcher runs.
func ClaimWaiters(h *Handler) (waiters int, watching bool) {
	h.claims.mu.Lock()
	defer h.claims.mu.Unlock()
	return len(h.claims.subs), h.claims.stop != nil
}
