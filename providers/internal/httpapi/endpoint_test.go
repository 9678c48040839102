package httpapi

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/cmmv-hive/resilience/providers"
)

func TestNewEndpoint(t *testing.T) {
	own := http.Header{}
	own.Set("Authorization", "Bearer key-1234")
	client := &http.Client{}
	e := NewEndpoint("http://127.0.0.1:1/v1/x", client, own, "key-1234",
		map[string]string{"authorization": "Bearer proxy-secret", "x-short": "1234567"})
	assert.Equal(t, "http://127.0.0.1:1/v1/x", e.URL)
	assert.Same(t, client, e.Client)
	assert.Equal(t, "Bearer proxy-secret", e.Header.Get("Authorization"), "configured headers override the backend's own")
	assert.Equal(t, "1234567", e.Header.Get("X-Short"))
	assert.Equal(t, "Bearer key-1234", own.Get("Authorization"), "the backend's header is not changed")
	assert.ElementsMatch(t, []string{"key-1234", "Bearer proxy-secret"}, e.Secrets, "the key and configured values of 8 bytes or more")

	e = NewEndpoint("http://127.0.0.1:1", nil, nil, "", nil)
	assert.Nil(t, e.Client, "nil means the endpoint's own pool")
	assert.NotNil(t, e.pool)
	assert.NotNil(t, e.Header)
}

// TestNewEndpointBehindAProxy: an endpoint that the environment sends
// through a proxy uses the shared net/http client, which speaks to proxies.
func TestNewEndpointBehindAProxy(t *testing.T) {
	proxy, _ := url.Parse("http://127.0.0.1:3128")
	proxyFor = http.ProxyURL(proxy)
	t.Cleanup(func() { proxyFor = http.ProxyFromEnvironment })
	e := NewEndpoint("http://api.example.com/v1/x", nil, nil, "", nil)
	assert.Same(t, providers.HTTPClient(), e.Client)
	assert.Nil(t, e.pool)
}
