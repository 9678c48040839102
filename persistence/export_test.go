package persistence

import "time"

// ReadAuditFrom lets tests read from an exact stored time instead of racing
// the clock with Query.Since.
var ReadAuditFrom = readAudit

// KeyID and BodyHash let tests write the record a node would have written.
var (
	KeyID    = keyID
	BodyHash = bodyHash
)

// SetFetchWait shortens the pull requests of the workers j starts next.
func SetFetchWait(j *Jobs, d time.Duration) { j.fetchWait = d }

// IdlePulls counts the workers' pull requests that expired with no job.
func IdlePulls(w *Workers) int64 { return w.idle.Load() }

// SetClaimRefresh shortens how often j's idempotent requests rewrite their
// claims, and so how soon an unrefreshed claim is taken over (StaleAfter
// periods).
func SetClaimRefresh(j *Jobs, d time.Duration) { j.claimRefresh = d }

// StaleAfter is staleAfter.
const StaleAfter = staleAfter
