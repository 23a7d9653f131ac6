package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIdleConnectionsDoNotStarveHealth opens 700 connections to a server
// limited to 600 open files, from a second client address (127.0.0.2):
// half of them idle keep-alive connections after one request, half that
// never send one. With MAX_CONNECTIONS=64 the server keeps at most 64 of
// them open and a new client still gets /health at once.
func TestIdleConnectionsDoNotStarveHealth(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Fatalf("prlimit (util-linux) is needed to give the server a small open file limit: %v", err)
	}
	bin := buildServer(t)
	wrapper := filepath.Join(t.TempDir(), "server")
	require.NoError(t, os.WriteFile(wrapper, []byte("#!/bin/sh\nexec prlimit --nofile=600:600 "+bin+"\n"), 0o755))
	srv := startServer(t, wrapper, t.TempDir(), "", "MAX_CONNECTIONS=64")
	addr := strings.TrimPrefix(srv.base, "http://")

	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 700 {
		c, err := dialer.Dial("tcp", addr)
		if err != nil {
			continue // refused or not accepted: the attack's loss
		}
		conns = append(conns, c)
		if i%2 == 0 {
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err := fmt.Fprintf(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"); err == nil {
				if res, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
					res.Body.Close()
				}
			}
		}
	}
	// A new client, from the first address, one connection per request.
	fresh := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range 10 {
		start := time.Now()
		res, err := fresh.Get(srv.base + "/health")
		require.NoError(t, err, "/health with 700 connections made")
		res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode)
		assert.Less(t, time.Since(start), 2*time.Second)
	}
	open := 0
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		var b [1]byte
		_, err := c.Read(b[:])
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			open++
		}
	}
	t.Logf("%d of the attacker's %d connections are still open", open, len(conns))
	assert.LessOrEqual(t, open, 64, "the server keeps at most MAX_CONNECTIONS")
	assert.False(t, strings.Contains(srv.logs.String(), "too many open files"), "the server ran out of file descriptors")
}
