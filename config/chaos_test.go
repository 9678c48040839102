package config

import "testing"

func TestChaos(t *testing.T) {
	if c := mustParse(t, "", okModels); c.Global.Chaos.Enabled {
		t.Error("chaos.enabled: got true by default, want false")
	}
	if c := mustParse(t, "chaos: {enabled: true}", okModels); !c.Global.Chaos.Enabled {
		t.Error("chaos.enabled: got false, want true as given")
	}
	_, err := Parse(GlobalFile, []byte("chaos: {enabled: sometimes}"), ModelsFile, []byte(okModels))
	if err == nil {
		t.Error("chaos.enabled: sometimes: got no error, want one")
	}
}
