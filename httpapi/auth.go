package httpapi

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/tenancy/tenancy"
)

// Defaults of the per-client limit on the endpoints that run bcrypt
// (POST /admin/login, POST /org/create, PUT /org/update, PUT
// /admin/password): generous, since behind a proxy or a NAT many users
// share one address. The per-account back-off (tenancy.WithLoginBackoff)
// is what stops password guessing; this limit only slows one client down.
// IPv6 clients are limited per /64, the block one host usually has.
const (
	DefaultLoginRate  = 10 // requests per second per client address
	DefaultLoginBurst = 30
)

// WithLoginRateLimit sets the per-client-address limit on the endpoints
// that check or hash passwords (POST /admin/login, POST /org/create, PUT
// /org/update, PUT /admin/password): perSecond requests per second with
// bursts of burst; excess requests get 429 with Retry-After. A perSecond
// of 0 switches the limit off. A perSecond that is negative or not a
// finite number, or a burst under 1 with the limit on, is refused: it
// would switch the limit off or block every request without saying so.
func WithLoginRateLimit(perSecond float64, burst int) Option {
	return func(a *api) error {
		switch {
		case math.IsNaN(perSecond) || math.IsInf(perSecond, 0) || perSecond < 0:
			return fmt.Errorf("httpapi: login rate %v must be a finite number of requests per second, 0 or more (0 switches the limit off)", perSecond)
		case perSecond > 0 && burst < 1:
			return fmt.Errorf("httpapi: login burst %d must be at least 1", burst)
		}
		a.loginRate, a.loginBurst = rate.Limit(perSecond), max(burst, 1)
		return nil
	}
}

// WithTrustedProxies names the proxies whose X-Forwarded-For header is
// believed: a request from one of them is limited by the last address in
// the header that is not itself a trusted proxy. Without it the header is
// ignored, since any client can send it.
func WithTrustedProxies(proxies ...netip.Prefix) Option {
	return func(a *api) error {
		for _, p := range proxies {
			if !p.IsValid() {
				return fmt.Errorf("httpapi: trusted proxy %v is not a valid prefix", p)
			}
		}
		a.trusted = append(a.trusted, proxies...)
		return nil
	}
}

// maxClients bounds the clients an ipLimiter remembers. When it is full
// of clients seen within their refill time, new clients are refused (429)
// until room frees: a flood of fresh addresses cannot grow memory.
const maxClients = 100_000

// ipLimiter keeps a token bucket per client address (per /64 for IPv6).
type ipLimiter struct {
	limit   rate.Limit
	burst   int
	trusted []netip.Prefix

	mu      sync.Mutex
	clients map[netip.Addr]*client
	swept   time.Time
}

type client struct {
	lim  *rate.Limiter
	seen time.Time
}

// newIPLimiter returns a limiter, or nil for a limit of zero or less.
func newIPLimiter(limit rate.Limit, burst int, trusted []netip.Prefix) *ipLimiter {
	if limit <= 0 {
		return nil
	}
	return &ipLimiter{limit: limit, burst: burst, trusted: trusted, clients: map[netip.Addr]*client{}, swept: time.Now()}
}

// refill is how long an idle client's bucket takes to fill up: after it,
// forgetting the client changes nothing.
func (l *ipLimiter) refill() time.Duration {
	return max(time.Second, time.Duration(float64(l.burst)/float64(l.limit)*float64(time.Second)))
}

// sweep forgets the clients idle for longer than idle. The caller holds mu.
func (l *ipLimiter) sweep(now time.Time, idle time.Duration) {
	for a, c := range l.clients {
		if now.Sub(c.seen) > idle {
			delete(l.clients, a)
		}
	}
	l.swept = now
}

// allow takes a token for addr, and otherwise says how long to wait.
func (l *ipLimiter) allow(addr netip.Addr) (bool, time.Duration) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		l.sweep(now, l.refill())
	}
	c, ok := l.clients[addr]
	if !ok {
		if len(l.clients) >= maxClients {
			l.sweep(now, l.refill())
			if len(l.clients) >= maxClients {
				return false, l.refill()
			}
		}
		c = &client{lim: rate.NewLimiter(l.limit, l.burst)}
		l.clients[addr] = c
	}
	c.seen = now
	r := c.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// clientAddr is the address a request comes from: its peer, or, from a
// trusted proxy, the last untrusted address of X-Forwarded-For.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if !isTrusted(trusted, peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			// Not an address: the hop to its right (or the proxy)
			// is the client as far as can be told.
			break
		}
		if !isTrusted(trusted, a) {
			return a
		}
		peer = a
	}
	return peer
}

// parseHop parses one X-Forwarded-For entry, which some proxies write
// with a port ("1.2.3.4:5678", "[2001:db8::1]:443").
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// clientKey is the address a client is limited as: an IPv4 address, or
// the /64 of an IPv6 one.
func clientKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

func isTrusted(trusted []netip.Prefix, a netip.Addr) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// limit applies the per-client limit to next, and tells the Manager the
// client's address, by which it counts failed password checks.
func (a *api) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := clientAddr(r, a.trusted)
		if a.limiter != nil {
			if ok, wait := a.limiter.allow(clientKey(addr)); !ok {
				w.Header().Set("Retry-After", retryAfter(wait))
				writeProblem(w, r, Problem{Status: http.StatusTooManyRequests, Detail: "Too many requests from this address; retry after the time in Retry-After"})
				return
			}
		}
		if addr.IsValid() {
			r = r.WithContext(tenancy.ContextWithClientAddr(r.Context(), addr))
		}
		next.ServeHTTP(w, r)
	})
}

func (a *api) logout(w http.ResponseWriter, r *http.Request) {
	if err := a.m.Logout(r.Context(), ClaimsFrom(r.Context())); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": "Logged out: this token is revoked"})
}

// changePassword sets a new password; the old one is required. Tokens
// issued before stop working, the caller's included: the answer carries
// a new one.
func (a *api) changePassword(w http.ResponseWriter, r *http.Request) {
	var current, next string
	if !a.decode(w, r, map[string]*string{"current_password": &current, "new_password": &next}, false) {
		return
	}
	tok, err := a.m.ChangePassword(r.Context(), ClaimsFrom(r.Context()), current, next)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tokenBodyOf(tok))
}

func (a *api) jwks(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(a.m.JWKS())
}
