// Package bus is Hive's NATS layer: the embedded server used when no
// deployment is given, client connections to it or to an existing
// deployment, the one file where every subject is built, the wire codec
// (protobuf, or JSON when asked), the hive.v1.infer request ingress
// registered with the NATS services framework (micro), the event publisher,
// the admin endpoints (admin.go) and the chaos endpoints with the partition
// switch (chaos.go), each with its client helper (AdminRequest,
// ChaosRequest) that gathers one answer per node.
//
// Imports: messages, internal/jsonwrite, nats.go, nats-server, protobuf and
// zerolog. It never
// imports actors/, persistence/ or gateway/; those packages are handed bus
// values by the node package, and bus reaches the router only through the
// small Dispatcher interface it declares.
//
// Concurrency: Subjects, the codec functions and Redact are pure and safe
// for concurrent use. An Ingress, Admin and Chaos are safe for concurrent
// use. The ingress's NATS callback only decodes and forwards; each request's
// reply (sink.go, the messages.Sink the Dispatcher is handed) is encoded on
// whatever goroutine the Dispatcher calls it on and published there, or,
// while other requests are in flight, by the ingress's outbox (outbox.go);
// the admin and chaos callbacks call their handler and answer. bus's own
// goroutines are the ingress's: a forwarded request's wait for its ack and
// the outbox's drainer, each ending with its work, both waited for by
// Stop. The ones behind a connection, a micro service or an embedded
// server belong to nats.go and nats-server and stop with Close, Stop and
// Shutdown.
package bus
