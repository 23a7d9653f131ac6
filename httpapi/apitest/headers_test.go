package apitest_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tenancy/tenancy/httpapi"
)

// TestSecurityHeaders checks that every kind of answer carries
// X-Content-Type-Options: nosniff, and that a caller's X-Request-ID is
// kept only when it is short and plain: anything else is replaced, so
// that logs and answers never carry what a client chose to inject.
func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	protected := httpapi.RequireAuth(e.m)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("reached without a token")
	}))
	for _, c := range []struct {
		h              http.Handler
		method, target string
		status         int
	}{
		{e.h, "GET", "/health", 200},
		{e.h, "GET", "/openapi.json", 200},
		{e.h, "GET", "/docs", 301},
		{e.h, "GET", "/org/get", 400},
		{e.h, "POST", "/admin/login", 400},
		{e.h, "DELETE", "/org/delete", 401},
		{e.h, "GET", "/nowhere", 404},
		{e.h, "PATCH", "/health", 405},
		{protected, "GET", "/me", 401},
	} {
		rec := httptest.NewRecorder()
		c.h.ServeHTTP(rec, httptest.NewRequest(c.method, c.target, nil))
		assert.Equal(t, c.status, rec.Code, "%s %s", c.method, c.target)
		assert.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"), "%s %s", c.method, c.target)
	}

	generated := regexp.MustCompile(`^[0-9a-f]{16}$`)
	for _, tt := range []struct{ sent, kept string }{
		{"req-42.A_b", "req-42.A_b"},
		{strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{strings.Repeat("a", 65), ""},
		{"two words", ""},
		{`<script>alert(1)</script>`, ""},
		{"id\x1b[31m", ""},
		{"évil", ""},
		{`forged" level=ERROR msg="`, ""},
	} {
		r := do(t, e.h, call{method: "GET", target: "/org/get", headers: map[string]string{"X-Request-ID": tt.sent}, invalidRequest: true})
		got := r.header.Get("X-Request-ID")
		if tt.kept != "" {
			assert.Equal(t, tt.kept, got)
		} else {
			assert.Regexp(t, generated, got, "%q is replaced", tt.sent)
		}
		assert.Equal(t, got, r.body["request_id"], "the problem carries the id the logs use")
	}
}
