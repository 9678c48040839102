package config

import "time"

// Jobs configures durable jobs and idempotency keys, resilience.yml's
// jobs: block. Both need JetStream (persistence on); without it a node
// answers no job subject and serves idempotency keys as plain requests,
// and says so at start.
type Jobs struct {
	Enabled           bool          // enabled: take and run jobs, honour idempotency keys, default true
	Slots             int           // slots: normal jobs this node runs at once, default 4, >= 1
	CriticalSlots     int           // criticalSlots: critical jobs this node runs at once beside the normal ones, default 2, >= 1
	AckWait           time.Duration // ackWait: how long a job stays with a node that stopped answering for it before another node takes it, default 30s, >= 1s
	MaxDeliveries     int           // maxDeliveries: nodes that may take one job before it fails, default 3, 1..20
	ResultTTL         time.Duration // resultTTL: how long a job's state and result are kept, default 24h, > 0
	IdempotencyWindow time.Duration // idempotencyWindow: how long an idempotency key returns its first answer, default 24h, > 0
}

func defaultJobs() Jobs {
	return Jobs{Enabled: true, Slots: 4, CriticalSlots: 2, AckWait: 30 * time.Second, MaxDeliveries: 3,
		ResultTTL: 24 * time.Hour, IdempotencyWindow: 24 * time.Hour}
}

func (d *decoder) jobsFields(j *Jobs) map[string]field {
	return map[string]field{
		"enabled":           d.flag(&j.Enabled),
		"slots":             d.count(&j.Slots, 1),
		"criticalSlots":     d.count(&j.CriticalSlots, 1),
		"ackWait":           d.durationAtLeast(&j.AckWait, time.Second),
		"maxDeliveries":     d.countIn(&j.MaxDeliveries, 1, 20),
		"resultTTL":         d.duration(&j.ResultTTL, positive),
		"idempotencyWindow": d.duration(&j.IdempotencyWindow, positive),
	}
}

// Events configures how a node publishes its events, resilience.yml's
// events: block.
type Events struct {
	Encoding string // encoding: json or protobuf, default json (readable with nats sub; consumers decode both)
}

var eventEncodings = []string{"json", "protobuf"}

func (d *decoder) eventsFields(e *Events) map[string]field {
	return map[string]field{
		"encoding": d.choice(&e.Encoding, "encoding", eventEncodings),
	}
}
