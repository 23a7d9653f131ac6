package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of the per-client limit on POST /admin/login and
// PUT /admin/password: generous, since behind a proxy or a NAT many users
// share one address. The per-account back-off (tenancy.WithLoginBackoff)
// is what stops password guessing; this limit only slows one client down.
const (
	DefaultLoginRate  = 10 // requests per second per client address
	DefaultLoginBurst = 30
)

// WithLoginRateLimit sets the per-client-address limit on POST
// /admin/login and PUT /admin/password: perSecond requests per second
// with bursts of burst; excess requests get 429 with Retry-After. A
// perSecond of 0 or less switches the limit off.
func WithLoginRateLimit(perSecond float64, burst int) Option {
	return func(a *api) {
		if perSecond <= 0 {
			a.limiter = nil
			return
		}
		trusted := a.limiter.trustedOrNil()
		a.limiter = newIPLimiter(rate.Limit(perSecond), max(burst, 1))
		a.limiter.trusted = trusted
	}
}

// WithTrustedProxies names the proxies whose X-Forwarded-For header is
// believed: a request from one of them is limited by the last address in
// the header that is not itself a trusted proxy. Without it the header is
// ignored, since any client can send it.
func WithTrustedProxies(proxies ...netip.Prefix) Option {
	return func(a *api) {
		if a.limiter != nil {
			a.limiter.trusted = append(a.limiter.trusted, proxies...)
		}
	}
}

// ipLimiter keeps a token bucket per client address.
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

func newIPLimiter(limit rate.Limit, burst int) *ipLimiter {
	return &ipLimiter{limit: limit, burst: burst, clients: map[netip.Addr]*client{}, swept: time.Now()}
}

func (l *ipLimiter) trustedOrNil() []netip.Prefix {
	if l == nil {
		return nil
	}
	return l.trusted
}

// allow takes a token for addr, and otherwise says how long to wait.
func (l *ipLimiter) allow(addr netip.Addr) (bool, time.Duration) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		// Forget clients idle long enough for their bucket to be full.
		for a, c := range l.clients {
			if now.Sub(c.seen) > 10*time.Minute {
				delete(l.clients, a)
			}
		}
		l.swept = now
	}
	c, ok := l.clients[addr]
	if !ok {
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

// clientAddr is the address a request is limited by: its peer, or, from
// a trusted proxy, the last untrusted address of X-Forwarded-For.
func (l *ipLimiter) clientAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if !l.isTrusted(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer
		}
		if a = a.Unmap(); !l.isTrusted(a) {
			return a
		}
	}
	return peer
}

func (l *ipLimiter) isTrusted(a netip.Addr) bool {
	for _, p := range l.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// limit applies the per-client limit to next.
func (a *api) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.limiter != nil {
			if ok, wait := a.limiter.allow(a.limiter.clientAddr(r)); !ok {
				w.Header().Set("Retry-After", retryAfter(wait))
				writeProblem(w, r, Problem{Status: http.StatusTooManyRequests, Detail: "Too many requests from this address; retry after the time in Retry-After"})
				return
			}
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
	writeJSON(w, http.StatusOK, tokenBody{
		AccessToken: tok.AccessToken, TokenType: tok.TokenType,
		AdminID: string(tok.AdminID), OrgID: string(tok.OrgID),
	})
}

func (a *api) jwks(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(a.m.JWKS())
}
