package httpapi

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// LimitConnections returns ln, changed so that srv keeps at most max
// connections open, and sets srv.ConnState to track them (calling any
// ConnState srv had). At the bound a new connection closes the connection
// that has waited longest without a request in flight, an idle keep-alive
// connection or one that has not finished sending its first request, so
// that idle connections cannot take every file descriptor and a new
// client (a health check) is still served. Only when every connection has
// a request in flight is the new one closed at once. Serve srv on the
// returned listener.
func LimitConnections(srv *http.Server, ln net.Listener, max int) net.Listener {
	l := &limitListener{Listener: ln, max: max, conns: make(map[*limitConn]struct{})}
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, state http.ConnState) {
		if lc, ok := c.(*limitConn); ok {
			l.setState(lc, state)
		}
		if prev != nil {
			prev(c, state)
		}
	}
	return l
}

type limitListener struct {
	net.Listener
	max   int
	mu    sync.Mutex
	conns map[*limitConn]struct{}
}

// limitConn is a connection the listener counts until it is closed.
type limitConn struct {
	net.Conn
	l     *limitListener
	state http.ConnState
	since time.Time // when it entered state
	once  sync.Once
}

func (c *limitConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc := &limitConn{Conn: c, l: l, state: http.StateNew, since: time.Now()}
		l.mu.Lock()
		var victim *limitConn
		if len(l.conns) >= l.max {
			for o := range l.conns {
				if o.state != http.StateActive && (victim == nil || o.since.Before(victim.since)) {
					victim = o
				}
			}
			if victim == nil {
				// Every connection has a request in flight.
				l.mu.Unlock()
				c.Close()
				continue
			}
			delete(l.conns, victim)
		}
		l.conns[lc] = struct{}{}
		l.mu.Unlock()
		if victim != nil {
			victim.Close()
		}
		return lc, nil
	}
}

func (l *limitListener) setState(c *limitConn, state http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.conns[c]; !ok {
		return
	}
	switch state {
	case http.StateClosed, http.StateHijacked:
		// A hijacked connection is its handler's now; it no longer
		// counts against the HTTP bound.
		delete(l.conns, c)
	default:
		c.state, c.since = state, time.Now()
	}
}
