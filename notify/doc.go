// Package notify delivers alerts outside NATS: Webhooks posts each Alert to
// HTTP endpoints (a JSON consumer, a Slack incoming webhook), in order per
// endpoint, with retries, without ever making the caller wait.
//
// Imports: messages, protobuf and zerolog. The alerts actor does not know
// this package: the node package hands a Webhooks to whatever fans the
// actors' Publisher.Alert out.
//
// Concurrency: a Webhooks is safe for concurrent use. It runs one goroutine
// per endpoint, started by New and stopped by Close, which waits for them.
// A webhook URL may hold a secret (Slack's do): it is never logged nor put
// in an error; logs name a hook by its index and host.
package notify
