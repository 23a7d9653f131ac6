package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/tenancy/tenancy"
)

var discardLogger = slog.New(slog.DiscardHandler)

type ctxKey int

const (
	claimsKey ctxKey = iota
	requestIDKey
)

// ClaimsFrom returns the verified token claims RequireAuth put in ctx, or
// nil outside a protected route.
func ClaimsFrom(ctx context.Context) *tenancy.Claims {
	c, _ := ctx.Value(claimsKey).(*tenancy.Claims)
	return c
}

// RequireAuth returns middleware that lets a request through only with a
// valid "Authorization: Bearer <token>" issued by m and still in force,
// and puts the token's claims in the request context (see ClaimsFrom).
// Other requests get 401 problem details. It checks with
// tenancy.Manager.AuthenticateToken that the token was not revoked by a
// logout or a password change, that its admin and organization exist and
// that the admin is still a member, whose current role the claims carry
// (see RequirePermission): four database reads, run concurrently, or
// none with a warm cache (tenancy.WithCache). RequireValidToken skips
// them.
func RequireAuth(m *tenancy.Manager) func(http.Handler) http.Handler {
	a := &api{m: m, log: discardLogger}
	return a.requireAuth
}

// RequireValidToken is RequireAuth without the database: it checks the
// token's signature, algorithm, issuer and expiry only, so a token stays
// good until it expires even after a logout, a password change or the
// deletion of its organization. Use it where a database read per request
// costs more than that.
func RequireValidToken(m *tenancy.Manager) func(http.Handler) http.Handler {
	a := &api{m: m, log: discardLogger, stateless: true}
	return a.requireAuth
}

func (a *api) requireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r.Header.Get("Authorization"))
		if !ok {
			writeProblem(w, r, Problem{Status: http.StatusUnauthorized, Detail: "Not authenticated: send Authorization: Bearer <token>"})
			return
		}
		var claims *tenancy.Claims
		var err error
		if a.stateless {
			claims, err = a.m.VerifyToken(token)
		} else {
			claims, err = a.m.AuthenticateToken(r.Context(), token)
		}
		switch {
		case errors.Is(err, tenancy.ErrUnauthenticated):
			writeProblem(w, r, Problem{Status: http.StatusUnauthorized, Detail: "Invalid, expired or revoked token"})
			return
		case err != nil:
			a.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey, claims)))
	})
}

// bearerToken extracts the token of a Bearer Authorization header.
func bearerToken(h string) (string, bool) {
	const prefix = "bearer "
	if len(h) <= len(prefix) || len(h) > len(prefix)+tenancy.MaxTokenLength || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	t := strings.TrimSpace(h[len(prefix):])
	return t, t != ""
}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// withRequestID gives each request an id: the caller's X-Request-ID when it
// is short and plain, a random one otherwise. The id is echoed in the
// X-Request-ID response header and in problem details.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if !plainID(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-ID", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// noSniff tells browsers to take every answer as the type it declares,
// never as a script or page sniffed from its content.
func noSniff(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// plainID reports whether a caller's request id may be kept: 1 to 64
// letters, digits, '.', '_' and '-', which cannot forge a log field or
// carry markup.
func plainID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
