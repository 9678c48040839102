package gateway

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pair is a loopback TCP connection: the server's end and the client's.
func pair(t *testing.T) (server, client net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	select {
	case server = <-accepted:
	case <-timeout():
		t.Fatal("no connection accepted")
	}
	require.NotNil(t, server)
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// A client that closed its connection is seen: the request's context is
// cancelled.
func TestWatchSeesAClientThatLeft(t *testing.T) {
	server, client := pair(t)
	require.NoError(t, client.Close())
	ctx, cancel := context.WithCancel(context.Background())
	w := watch(server, cancel)
	require.NotNil(t, w, "a TCP connection is watched")
	select {
	case <-ctx.Done():
	case <-timeout():
		t.Fatal("the closed connection was not seen")
	}
	w.stop()
}

// A client that sent its next request (pipelined) while the answer was
// awaited is alive: nothing is cancelled, and the server's reader gets all
// of the request after the watch.
func TestWatchLeavesAPipelinedRequest(t *testing.T) {
	server, client := pair(t)
	_, err := io.WriteString(client, "pipelined")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := watch(server, cancel)
	require.NotNil(t, w)
	w.stop()
	assert.NoError(t, ctx.Err(), "a live client's request was cancelled")
	require.NoError(t, server.SetReadDeadline(time.Now().Add(wait)))
	got := make([]byte, len("pipelined"))
	_, err = io.ReadFull(server, got)
	require.NoError(t, err)
	assert.Equal(t, "pipelined", string(got))
}

// A stopped watch cancelled nothing and read nothing: the client's next
// bytes (its next request) are all there for the server's reader.
func TestWatchStoppedReadsNothing(t *testing.T) {
	server, client := pair(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := watch(server, cancel)
	require.NotNil(t, w)
	w.stop()
	assert.NoError(t, ctx.Err(), "a stopped watch cancelled its request")
	_, err := io.WriteString(client, "next request")
	require.NoError(t, err)
	require.NoError(t, server.SetReadDeadline(time.Now().Add(wait)))
	got := make([]byte, len("next request"))
	_, err = io.ReadFull(server, got)
	require.NoError(t, err)
	assert.Equal(t, "next request", string(got))
	assert.NoError(t, ctx.Err())
}
