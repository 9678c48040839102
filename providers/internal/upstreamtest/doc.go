// Package upstreamtest holds what the tests of the HTTP backends (openai,
// anthropic) share: a scripted upstream API on loopback (Server, started
// with Start and scripted by a Handler, which writes with Events or breaks
// off with Cut), helpers for one call (Bounded, Class, Open, Collect), and
// the test bodies the backends had in common (the Check functions).
//
// A backend's tests say once how its model is built over a Server, and
// get their serve helper from ServeWith:
//
//	func model(baseURL string, client *http.Client) (*Model, error) {
//		return New(Config{Name: "m", BaseURL: baseURL, APIKey: upstreamtest.APIKey, Client: client})
//	}
//
//	var serve = upstreamtest.ServeWith(model)
//
// A Check takes serve (CheckConnectionRefused takes model) and the
// upstream's script, written in the backend's own dialect.
//
// It is for tests only, and internal to providers.
package upstreamtest
