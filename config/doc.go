// Package config loads, defaults and validates the two YAML files a user edits:
// resilience.yml (global settings, optional) and models-resilience.yml (the
// models, required). Both files also sit in this directory and are embedded in
// the binary, so Defaults gives a configuration that runs with no API key.
//
// Every problem found is reported, not just the first, as an error of the form
// "<file>:<line>: <key path>: <what is wrong and what is allowed>". Values of
// environment variables never appear in those messages, and API keys never
// enter a Config: a model names the variable that holds its key.
//
// A Config is plain data: once loaded, it may be read from any goroutine. Its
// methods (Model.BreakerConfig, Model.RetryConfig, Global.GroupConfig ...)
// resolve each block into the configuration of a resilience policy; Load has
// validated every one of them, with the resilience package's own checks.
//
// It imports messages (for error class, degradation level and severity
// names), resilience (for the policies' configurations and presets) and
// observe (the alerts block is an observe.Alerts, decoded over
// observe.Defaults), and nothing else of the project.
package config
