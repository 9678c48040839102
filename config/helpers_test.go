package config

import (
	"regexp"
	"strings"
	"testing"
)

// lines joins YAML lines, so that a test's line numbers can be counted.
func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

// parseModels parses a models file with the global defaults.
func parseModels(t *testing.T, models string) (*Config, error) {
	t.Helper()
	return Parse(GlobalFile, nil, ModelsFile, []byte(models))
}

// mustParse parses both files (global may be "" for none) and fails the test
// on any error.
func mustParse(t *testing.T, global, models string) *Config {
	t.Helper()
	var g []byte
	if global != "" {
		g = []byte(global)
	}
	c, err := Parse(GlobalFile, g, ModelsFile, []byte(models))
	if err != nil {
		t.Fatalf("Parse: got error\n%v\nwant none", err)
	}
	return c
}

// exampleLine matches a commented-out example line of the default files: an
// indented "#" directly followed by a key or by the two spaces of deeper
// indentation (prose comments have one space after the "#").
var exampleLine = regexp.MustCompile(`(?m)^( +)#(\S|  )`)

// uncomment turns the examples of a default file into live YAML.
func uncomment(s string) string { return exampleLine.ReplaceAllString(s, "$1$2") }
