// Package node is the composition root of a hive node: Start turns the
// loaded configuration into a running node and Stop takes it down. In
// order: the node's logger key, the NATS connection (an embedded server
// with JetStream, or an existing deployment), persistence (the audit
// stream and breaker states, or none without JetStream), the actors (with
// their providers, wrapped in the fault layer when chaos is on, and the
// events fanned out to NATS, the metrics and the webhooks), the
// subscription to other nodes' health, durable jobs and idempotency keys
// (jobs.go), the NATS ingress, the admin, chaos and jobs endpoints, HTTP
// (the gateway and the dashboard) and profiles. It carries out admin
// commands (admin.go) and injected node faults (chaos.go), and gives the
// dashboard the whole deployment (cluster.go).
//
// It imports every package of the request path and nothing imports it but
// cmd/hive-node, which keeps only flags and subcommands.
//
// Concurrency: Start and Stop are called once each, from one goroutine;
// Status, Ready, NATSURL and HTTPURL are safe from any goroutine once Start
// returned. Every goroutine a node starts belongs to one of its parts and
// ends with Stop.
package node
