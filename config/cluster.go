package config

import "time"

// Cluster configures what a node does with the other nodes of its
// deployment (README "One deployment"): adopting their breaker openings,
// and taking half-open trials by a JetStream lease.
type Cluster struct {
	ShareBreakers bool          // shareBreakers: adopt other nodes' trusted openings for the same upstream, default true
	WitnessWindow time.Duration // witnessWindow: how close together two nodes' connection or timeout openings must be to be adopted, default 30s, > 0
	ProbeLease    bool          // probeLease: one node per upstream takes the half-open trials, by a lease in JetStream, default true
	LeaseTTL      time.Duration // leaseTTL: how long a trial lease lives when its holder does not give it back, default 30s, > 0
}

func defaultCluster() Cluster {
	return Cluster{ShareBreakers: true, WitnessWindow: 30 * time.Second, ProbeLease: true, LeaseTTL: 30 * time.Second}
}

func (d *decoder) clusterFields(c *Cluster) map[string]field {
	return map[string]field{
		"shareBreakers": d.flag(&c.ShareBreakers),
		"witnessWindow": d.duration(&c.WitnessWindow, positive),
		"probeLease":    d.flag(&c.ProbeLease),
		"leaseTTL":      d.duration(&c.LeaseTTL, positive),
	}
}
