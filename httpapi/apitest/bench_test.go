package apitest_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/httpapi"
)

// BenchmarkMiddleware measures the auth middleware on a trivial handler:
// RequireValidToken (no database) and RequireAuth (two reads).
func BenchmarkMiddleware(b *testing.B) {
	e := newEnvWith(b, nil, nil)
	org, err := e.m.CreateOrg(b.Context(), tenancy.CreateOrgParams{Name: "Acme Corporation", AdminEmail: "admin@acme.com", AdminPassword: "MySecurePassword123"})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := e.m.IssueToken(&tenancy.Admin{ID: org.AdminID, Email: org.AdminEmail}, &tenancy.Membership{OrgID: org.ID, AdminID: org.AdminID, Role: tenancy.RoleOwner})
	if err != nil {
		b.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for name, mw := range map[string]func(http.Handler) http.Handler{
		"RequireValidToken": httpapi.RequireValidToken(e.m),
		"RequireAuth":       httpapi.RequireAuth(e.m),
	} {
		b.Run(name, func(b *testing.B) {
			h := mw(ok)
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusNoContent {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}

// BenchmarkHandler measures whole requests through the handler without a
// network: GET /org/get (one read), a request body decoded and refused
// before any I/O, and an error answer (problem details).
func BenchmarkHandler(b *testing.B) {
	e := newEnvWith(b, nil, []httpapi.Option{httpapi.WithLoginRateLimit(0, 0)})
	if _, err := e.m.CreateOrg(b.Context(), tenancy.CreateOrgParams{Name: "Acme Corporation", AdminEmail: "admin@acme.com", AdminPassword: "MySecurePassword123"}); err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name, method, target, body string
		want                       int
	}{
		{"GET org", "GET", "/org/get?organization_name=Acme%20Corporation", "", 200},
		{"decode and validate", "POST", "/admin/login", `{"email":"not-an-email","password":"MySecurePassword123"}`, 400},
		{"problem details", "GET", "/org/get", "", 400},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(c.method, c.target, bytes.NewReader([]byte(c.body)))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				e.h.ServeHTTP(rec, req)
				if rec.Code != c.want {
					b.Fatal(rec.Code, rec.Body)
				}
			}
		})
	}
}
