package persistence

// ReadAuditFrom lets tests read from an exact stored time instead of racing
// the clock with Query.Since.
var ReadAuditFrom = readAudit
