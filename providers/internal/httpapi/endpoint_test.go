package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

// appender is a payload that writes itself.
type appender struct{ n int }

func (a appender) AppendJSON(b []byte) ([]byte, error) {
	return fmt.Appendf(b, `{"appended":%d,"pad":%q}`, a.n, strings.Repeat("x", a.n%2000)), nil
}

// TestConcurrentBodiesStayApart: requests made at once through one pool,
// their bodies written into reused buffers, each reach the upstream whole
// and as sent, whether the payload writes itself or goes to json.Marshal.
func TestConcurrentBodiesStayApart(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	e := NewEndpoint(srv.URL, nil, nil, "", nil)
	require.NotNil(t, e.pool)
	var wg sync.WaitGroup
	for i := range 400 {
		wg.Go(func() {
			var payload any = appender{n: i * 7}
			want := fmt.Sprintf(`{"appended":%d,"pad":%q}`, i*7, strings.Repeat("x", (i*7)%2000))
			if i%2 == 1 {
				payload = map[string]int{"marshalled": i}
				want = fmt.Sprintf(`{"marshalled":%d}`, i)
			}
			status, body, perr := e.Answer(context.Background(), payload)
			if assert.Nil(t, perr) {
				assert.Equal(t, http.StatusOK, status)
				assert.Equal(t, want, string(body))
			}
		})
	}
	wg.Wait()
}
