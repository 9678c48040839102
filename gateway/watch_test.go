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

// A live client cancels nothing, and the watch reads none of what it
// sends: its next request, pipelined (sent while the answer was awaited)
// or sent after the watch stopped, is all there for the server's reader.
func TestWatchReadsNothing(t *testing.T) {
	for _, pipelined := range []bool{true, false} {
		t.Run(map[bool]string{true: "pipelined", false: "after the stop"}[pipelined], func(t *testing.T) {
			server, client := pair(t)
			const next = "next request"
			if pipelined {
				_, err := io.WriteString(client, next)
				require.NoError(t, err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w := watch(server, cancel)
			require.NotNil(t, w)
			w.stop()
			assert.NoError(t, ctx.Err(), "a live client's request was cancelled")
			if !pipelined {
				_, err := io.WriteString(client, next)
				require.NoError(t, err)
			}
			require.NoError(t, server.SetReadDeadline(time.Now().Add(wait)))
			got := make([]byte, len(next))
			_, err := io.ReadFull(server, got)
			require.NoError(t, err)
			assert.Equal(t, next, string(got))
			assert.NoError(t, ctx.Err())
		})
	}
}
