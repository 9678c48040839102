package config

// Chaos configures fault injection, resilience.yml's chaos: block. It is
// off by default: a node with chaos off does not subscribe to the chaos
// subjects, so nothing can inject a fault into it.
type Chaos struct {
	Enabled bool // enabled: answer hive.v1.chaos.<node|all>.inject and .clear, default false
}

func (d *decoder) chaosFields(c *Chaos) map[string]field {
	return map[string]field{
		"enabled": d.flag(&c.Enabled),
	}
}
