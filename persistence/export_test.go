package persistence

// ReadAuditFrom lets tests read from an exact stored time instead of racing
// the clock with Query.Since.
var ReadAuditFrom = readAudit

// KeyID and BodyHash let tests write the record a node would have written.
var (
	KeyID    = keyID
	BodyHash = bodyHash
)
