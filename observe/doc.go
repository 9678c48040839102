// Package observe is the one home of Hive's observability settings: the
// alert rules (their names, what each measures, their defaults) and the
// webhooks alerts are posted to. config decodes resilience.yml's alerts:
// block into an Alerts value starting from Defaults, the alerts actor
// (actors) evaluates it, and the node posts alerts to its webhooks; no
// other package holds a default of these. (The Prometheus metrics,
// gateway.Metrics, have no settings.)
//
// It imports messages and resilience only, and holds plain values: safe to
// share once built, like any value.
package observe
