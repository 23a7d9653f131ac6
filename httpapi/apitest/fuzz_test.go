package apitest_test

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/httpapi"
	"github.com/tenancy/tenancy/memstore"
)

// FuzzRequests sends arbitrary bodies and Authorization headers to every
// endpoint that reads a body, with a valid token or a fuzzed one: no
// request may get a 5xx or panic, and every error is problem details with
// a detail.
func FuzzRequests(f *testing.F) {
	m, err := tenancy.New(memstore.New(), tenancy.WithSigningSecret(testSecret), tenancy.WithBcryptCost(tenancy.MinBcryptCost))
	if err != nil {
		f.Fatal(err)
	}
	org, err := m.CreateOrg(f.Context(), tenancy.CreateOrgParams{Name: "Acme Corporation", AdminEmail: "admin@acme.com", AdminPassword: "MySecurePassword123"})
	if err != nil {
		f.Fatal(err)
	}
	tok, err := m.IssueToken(&tenancy.Admin{ID: org.AdminID, Email: org.AdminEmail}, &tenancy.Membership{OrgID: org.ID, AdminID: org.AdminID, Role: tenancy.RoleOwner})
	if err != nil {
		f.Fatal(err)
	}
	h := newHandler(f, m, httpapi.WithLoginRateLimit(0, 0))
	routes := []struct{ method, path string }{
		{"POST", "/org/create"}, {"PUT", "/org/update"}, {"DELETE", "/org/delete"}, {"POST", "/admin/login"},
		{"PUT", "/admin/password"}, {"POST", "/tenant/documents"}, {"GET", "/tenant/documents/"}, {"GET", "/org/get?organization_name="},
	}
	for _, body := range []string{
		`{"organization_name":"Acme","email":"a@acme.com","password":"MySecurePassword123"}`,
		`{"email":{"$ne":null},"password":"x"}`, `{"current_password":"MySecurePassword123","new_password":"x"}`,
		`[]`, `null`, `{"a":[[1]]}`, `{"$where":"1"}`, "{\"organization_name\":\"\xff\"}", `{"a":1e999}`, `{"organization_name":"Acme Corporation"}`,
	} {
		for i := range routes {
			f.Add(uint8(i), body, "")
		}
	}
	f.Add(uint8(1), `{}`, "Bearer "+strings.Repeat("a", 5000))
	f.Add(uint8(5), `{}`, "Bearer x.y.z")
	f.Fuzz(func(t *testing.T, route uint8, body, auth string) {
		rt := routes[int(route)%len(routes)]
		target := rt.path
		if strings.HasSuffix(target, "/") || strings.HasSuffix(target, "=") {
			target += urlSafe(body)
		}
		req := httptest.NewRequest(rt.method, "http://api.test"+target, bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/json")
		if auth == "" {
			auth = "Bearer " + tok.AccessToken
		}
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s with %q: %d %s", rt.method, target, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var p httpapi.Problem
			if rec.Header().Get("Content-Type") != "application/problem+json" || json.Unmarshal(rec.Body.Bytes(), &p) != nil || p.Detail == "" || p.Status != rec.Code {
				t.Fatalf("%s %s with %q: %d without problem details: %s", rt.method, target, body, rec.Code, rec.Body)
			}
		}
	})
}

// urlSafe keeps the fuzzed text usable in a URL path or query.
func urlSafe(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r > ' ' && r < 0x7f && !strings.ContainsRune("#?%/ ", r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}
