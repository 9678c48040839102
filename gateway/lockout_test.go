package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLockoutRules(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLockout(func() time.Time { return now })
	for i := 1; i < lockoutFailures; i++ {
		require.Zero(t, l.fail("a"), "failure %d locks out", i)
	}
	assert.Equal(t, lockoutWindow, l.fail("a"), "the 5th failure locks out")
	assert.Equal(t, lockoutWindow, l.locked("a"))
	assert.Zero(t, l.locked("b"), "other addresses are not locked")
	now = now.Add(lockoutWindow - time.Second)
	assert.Equal(t, time.Second, l.locked("a"))
	now = now.Add(time.Second)
	assert.Zero(t, l.locked("a"), "the lockout ends")
	assert.Zero(t, l.fail("a"), "a new window of tries")

	// Failures spread over windows never lock out.
	for range 3 * lockoutFailures {
		now = now.Add(lockoutWindow / 2)
		require.Zero(t, l.fail("c"))
		now = now.Add(lockoutWindow)
	}
	// A right token forgets the failures.
	for range lockoutFailures - 1 {
		require.Zero(t, l.fail("d"))
	}
	l.succeed("d")
	assert.Zero(t, l.fail("d"))
}

func TestLockoutIsBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLockout(func() time.Time { return now })
	for i := range lockoutAddresses + 50 {
		l.fail(strings.Repeat("x", i%7) + string(rune('a'+i%26)) + time.Duration(i).String())
	}
	assert.LessOrEqual(t, len(l.addrs), lockoutAddresses)
}

// TestDashboardAdminLocksOutTokenGuesses: wrong tokens from one address
// lead to 429 with Retry-After, for the right token too, while another
// address may still act.
func TestDashboardAdminLocksOutTokenGuesses(t *testing.T) {
	fc := newFakeCluster(1)
	h := dashHandler(t, fc, "s3cret-token")
	post := func(addr, auth string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/api/admin/breaker_reset", strings.NewReader(`{"model":"gpt-5"}`))
		r.RemoteAddr = addr
		r.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.root.ServeHTTP(rec, r) // the routes behind fasthttpadaptor, with the address set here
		return rec
	}
	for i := 1; i < lockoutFailures; i++ {
		assert.Equal(t, http.StatusUnauthorized, post("192.0.2.7:4000", "Bearer guess").Code, "guess %d", i)
	}
	rec := post("192.0.2.7:4001", "Bearer guess") // another port of the same host
	assert.Equal(t, http.StatusTooManyRequests, rec.Code, rec.Body.String())
	assert.Equal(t, "60", rec.Header().Get("Retry-After"))
	rec = post("192.0.2.7:4002", "Bearer s3cret-token")
	assert.Equal(t, http.StatusTooManyRequests, rec.Code, "the right token while locked out")
	assert.Empty(t, fc.adminCalls(), "nothing reached the cluster")
	assert.Equal(t, http.StatusOK, post("192.0.2.8:4000", "Bearer s3cret-token").Code, "another address")
}
