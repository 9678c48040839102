package gateway

import (
	"net/http"
	"slices"

	"github.com/cmmv-hive/resilience/messages"
)

// model is OpenAI's model object. created is when the gateway started:
// Hive does not know when a provider made a model.
type model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

type modelList struct {
	Object string  `json:"object"`
	Data   []model `json:"data"`
}

func (g *gateway) model(name string) model {
	return model{ID: name, Object: "model", Created: g.started, OwnedBy: "hive"}
}

// listModels serves GET /v1/models: the configured models, in config order.
func (g *gateway) listModels(w http.ResponseWriter, _ *http.Request) {
	names := g.models()
	list := modelList{Object: "list", Data: make([]model, len(names))}
	for i, n := range names {
		list.Data[i] = g.model(n)
	}
	writeJSON(w, http.StatusOK, list)
}

// getModel serves GET /v1/models/{model}: one configured model, or 404.
func (g *gateway) getModel(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("model")
	if !slices.Contains(g.models(), name) {
		writeErrorParam(w, http.StatusNotFound, messages.Failure(messages.ErrorClass_bad_request, "unknown_model",
			"no model of that name is configured"), "model")
		return
	}
	writeJSON(w, http.StatusOK, g.model(name))
}
