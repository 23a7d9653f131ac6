package apitest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/httpapi"
	"github.com/tenancy/tenancy/mongostore"
	"github.com/tenancy/tenancy/mongotest"
)

func TestTenantDocuments(t *testing.T) {
	e := newEnv(t)
	create(t, e.h, "Acme Corporation", "admin@acme.com", "MySecurePassword123")
	tok := login(t, e.h, "admin@acme.com", "MySecurePassword123")

	body := map[string]any{"name": "Widget", "price": 9.5, "qty": 12, "big": 9007199254740993, "tags": []any{"new"}, "dims": map[string]any{"w": 1}}
	r := do(t, e.h, call{method: "POST", target: "/tenant/documents", body: body, token: tok})
	require.Equal(t, http.StatusCreated, r.status, "%s", r.raw)
	id := r.body["id"].(string)
	assert.Contains(t, string(r.raw), `"big":9007199254740993`, "integers are kept exactly")
	assert.Equal(t, "Widget", r.body["data"].(map[string]any)["name"])

	r = do(t, e.h, call{method: "GET", target: "/tenant/documents/" + id, token: tok})
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, id, r.body["id"])
	assert.Contains(t, string(r.raw), `"big":9007199254740993`)
	assert.Equal(t, map[string]any{"w": float64(1)}, r.body["data"].(map[string]any)["dims"])

	var ids []string
	ids = append(ids, id)
	for i := range 4 {
		r := do(t, e.h, call{method: "POST", target: "/tenant/documents", body: map[string]any{"i": i}, token: tok})
		require.Equal(t, http.StatusCreated, r.status)
		ids = append(ids, r.body["id"].(string))
	}
	var listed []string
	after := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5)
		target := "/tenant/documents?limit=2"
		if after != "" {
			target += "&after=" + after
		}
		r := do(t, e.h, call{method: "GET", target: target, token: tok})
		require.Equal(t, http.StatusOK, r.status)
		for _, d := range r.body["documents"].([]any) {
			listed = append(listed, d.(map[string]any)["id"].(string))
		}
		next, ok := r.body["next_after"].(string)
		if !ok {
			assert.Nil(t, r.body["next_after"])
			break
		}
		after = next
	}
	assert.Equal(t, ids, listed, "every document once, in creation order")

	// Renamed through the API: the documents follow.
	r = do(t, e.h, call{method: "PUT", target: "/org/update", token: tok, body: map[string]string{
		"organization_name": "Acme Global Inc", "email": "admin@acme.com", "password": "MySecurePassword123"}})
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, float64(6), r.body["documents_migrated"])
	r = do(t, e.h, call{method: "GET", target: "/tenant/documents/" + id, token: tok})
	assert.Equal(t, http.StatusOK, r.status)

	// Another organization's admin reaches none of it.
	create(t, e.h, "Globex", "admin@globex.com", "MySecurePassword123")
	other := login(t, e.h, "admin@globex.com", "MySecurePassword123")
	r = do(t, e.h, call{method: "GET", target: "/tenant/documents/" + id, token: other})
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.Equal(t, "Document not found", r.body["detail"])
	r = do(t, e.h, call{method: "DELETE", target: "/tenant/documents/" + id, token: other})
	assert.Equal(t, http.StatusNotFound, r.status)
	r = do(t, e.h, call{method: "GET", target: "/tenant/documents", token: other})
	require.Equal(t, http.StatusOK, r.status)
	assert.Empty(t, r.body["documents"])

	r = do(t, e.h, call{method: "DELETE", target: "/tenant/documents/" + id, token: tok})
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "Document deleted", r.body["message"])
	r = do(t, e.h, call{method: "DELETE", target: "/tenant/documents/" + id, token: tok})
	assert.Equal(t, http.StatusNotFound, r.status)
	r = do(t, e.h, call{method: "GET", target: "/tenant/documents/" + id, token: tok})
	assert.Equal(t, http.StatusNotFound, r.status)

	// Once the organization is deleted its token grants nothing.
	r = do(t, e.h, call{method: "DELETE", target: "/org/delete", token: tok, body: map[string]string{"organization_name": "Acme Global Inc"}})
	require.Equal(t, http.StatusOK, r.status)
	for _, c := range []call{
		{method: "POST", target: "/tenant/documents", body: map[string]any{"a": 1}, token: tok},
		{method: "GET", target: "/tenant/documents", token: tok},
		{method: "GET", target: "/tenant/documents/" + ids[1], token: tok},
		{method: "DELETE", target: "/tenant/documents/" + ids[1], token: tok},
	} {
		r := do(t, e.h, c)
		assert.Equal(t, http.StatusUnauthorized, r.status, "%s %s", c.method, c.target)
		assert.Equal(t, "Invalid, expired or revoked token", r.body["detail"])
	}
}

func TestTenantDocumentsRejects(t *testing.T) {
	e := newEnv(t)
	create(t, e.h, "Acme Corporation", "admin@acme.com", "MySecurePassword123")
	tok := login(t, e.h, "admin@acme.com", "MySecurePassword123")
	good := "0123456789abcdef01234567"

	tests := []struct {
		desc   string
		c      call
		status int
		field  string
	}{
		{"no token", call{method: "POST", target: "/tenant/documents", body: map[string]any{"a": 1}, invalidRequest: true}, 401, ""},
		{"no token list", call{method: "GET", target: "/tenant/documents", invalidRequest: true}, 401, ""},
		{"no token get", call{method: "GET", target: "/tenant/documents/" + good, invalidRequest: true}, 401, ""},
		{"no token delete", call{method: "DELETE", target: "/tenant/documents/" + good, invalidRequest: true}, 401, ""},
		{"bad token", call{method: "GET", target: "/tenant/documents", token: tok + "x"}, 401, ""},
		{"array body", call{method: "POST", target: "/tenant/documents", body: `[1,2]`, token: tok, invalidRequest: true}, 400, ""},
		{"string body", call{method: "POST", target: "/tenant/documents", body: `"x"`, token: tok, invalidRequest: true}, 400, ""},
		{"empty body", call{method: "POST", target: "/tenant/documents", token: tok, invalidRequest: true}, 400, ""},
		{"malformed", call{method: "POST", target: "/tenant/documents", body: `{"a":`, token: tok, invalidRequest: true}, 400, ""},
		{"operator key", call{method: "POST", target: "/tenant/documents", body: map[string]any{"$where": "1"}, token: tok}, 400, "data.$where"},
		{"nested operator", call{method: "POST", target: "/tenant/documents", body: map[string]any{"q": map[string]any{"$ne": nil}}, token: tok}, 400, "data.q.$ne"},
		{"dotted key", call{method: "POST", target: "/tenant/documents", body: map[string]any{"a.b": 1}, token: tok}, 400, "data.a.b"},
		{"own _id", call{method: "POST", target: "/tenant/documents", body: map[string]any{"_id": "x"}, token: tok}, 400, "data._id"},
		{"too deep", call{method: "POST", target: "/tenant/documents", body: strings.Repeat(`{"a":`, 70) + "1" + strings.Repeat("}", 70), token: tok}, 400, ""},
		{"huge number", call{method: "POST", target: "/tenant/documents", body: `{"n": 1e999}`, token: tok, invalidRequest: true}, 400, ""},
		{"metadata stamp in an array", call{method: "POST", target: "/tenant/documents", body: map[string]any{"metadata": []any{map[string]any{"org_id": "x"}}}, token: tok}, 400, "data.metadata[0].org_id"},
		{"too large", call{method: "POST", target: "/tenant/documents", body: map[string]any{"s": strings.Repeat("x", httpapi.DefaultMaxBodyBytes)}, token: tok}, 413, ""},
		{"not JSON", call{method: "POST", target: "/tenant/documents", body: `a=1`, contentType: "application/x-www-form-urlencoded", token: tok}, 415, ""},
		{"bad id", call{method: "GET", target: "/tenant/documents/xyz", token: tok, invalidRequest: true}, 400, "id"},
		{"upper-case id", call{method: "DELETE", target: "/tenant/documents/0123456789ABCDEF01234567", token: tok, invalidRequest: true}, 400, "id"},
		{"limit zero", call{method: "GET", target: "/tenant/documents?limit=0", token: tok, invalidRequest: true}, 400, "limit"},
		{"limit too big", call{method: "GET", target: "/tenant/documents?limit=101", token: tok, invalidRequest: true}, 400, "limit"},
		{"limit not a number", call{method: "GET", target: "/tenant/documents?limit=ten", token: tok, invalidRequest: true}, 400, "limit"},
		{"bad after", call{method: "GET", target: "/tenant/documents?after=%24ne", token: tok, invalidRequest: true}, 400, "after"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			r := do(t, e.h, tt.c)
			assert.Equal(t, tt.status, r.status, "%s", r.raw)
			if tt.field != "" {
				assert.Contains(t, fields(r), tt.field)
			}
		})
	}
	r := do(t, e.h, call{method: "GET", target: "/tenant/documents", token: tok})
	require.Equal(t, http.StatusOK, r.status)
	assert.Empty(t, r.body["documents"], "nothing was written")

	// Arrays inside arrays: MongoDB stores them, FerretDB refuses them
	// with a 400 naming the body, never a 500.
	r = do(t, e.h, call{method: "POST", target: "/tenant/documents", body: `{"a":[[1,2]]}`, token: tok})
	if mongotest.Backend() == "ferretdb" {
		assert.Equal(t, http.StatusBadRequest, r.status, "%s", r.raw)
		assert.Equal(t, []string{"data"}, fields(r))
	} else {
		assert.Equal(t, http.StatusCreated, r.status, "%s", r.raw)
	}
}

// TestTenantDocumentsWaitForRename checks that a request finding its
// organization mid-rename for longer than the tenant wait gets 503.
func TestTenantDocumentsWaitForRename(t *testing.T) {
	e := newEnv(t)
	// Long enough for the first read of the organization on a loaded
	// machine, so that the wait ends on the rename.
	h := newHandler(t, e.m, httpapi.WithTenantWait(500*time.Millisecond))
	body := create(t, h, "Acme Corporation", "admin@acme.com", "MySecurePassword123")
	tok := login(t, h, "admin@acme.com", "MySecurePassword123")
	org, err := e.store.OrgByID(t.Context(), tenancy.OrgID(body["id"].(string)))
	require.NoError(t, err)
	// A rename another server is running right now: it holds the lock.
	now := time.Now().UTC()
	require.NoError(t, e.store.LockOrg(t.Context(), org.ID, "other-server", now.Add(time.Minute), now))
	org.State = tenancy.OrgRenaming
	org.PendingName, org.PendingIdentifier, org.PendingCollection = "Acme 2", "acme-2", "tenant_acme_2"
	org.ModifiedAt = time.Now().UTC()
	require.NoError(t, e.store.UpdateOrg(t.Context(), org))

	id := "0123456789abcdef01234567"
	for _, c := range []call{
		{method: "POST", target: "/tenant/documents", body: map[string]any{"a": 1}, token: tok},
		{method: "GET", target: "/tenant/documents", token: tok},
		{method: "GET", target: "/tenant/documents/" + id, token: tok},
		{method: "DELETE", target: "/tenant/documents/" + id, token: tok},
	} {
		r := do(t, h, c)
		assert.Equal(t, http.StatusServiceUnavailable, r.status, "%s %s: %s", c.method, c.target, r.raw)
		assert.Equal(t, "1", r.header.Get("Retry-After"))
		assert.Equal(t, "The organization is being renamed; retry shortly", r.body["detail"], "%s %s says why", c.method, c.target)
	}
	n, err := e.store.CountTenantDocuments(t.Context(), org.TenantCollection)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "the waiting insert wrote nothing")
}

// TestTenantQuotaOverHTTP fills a tenant to its quota: the next insert is
// a 409 naming the quota.
func TestTenantQuotaOverHTTP(t *testing.T) {
	e := newEnvWith(t, []tenancy.Option{tenancy.WithTenantQuota(1)}, nil)
	create(t, e.h, "Acme Corporation", "admin@acme.com", "MySecurePassword123")
	tok := login(t, e.h, "admin@acme.com", "MySecurePassword123")
	r := do(t, e.h, call{method: "POST", target: "/tenant/documents", body: map[string]any{"a": 1}, token: tok})
	require.Equal(t, http.StatusCreated, r.status, "%s", r.raw)
	r = do(t, e.h, call{method: "POST", target: "/tenant/documents", body: map[string]any{"a": 2}, token: tok})
	require.Equal(t, http.StatusConflict, r.status, "%s", r.raw)
	assert.Equal(t, []string{"data"}, fields(r))
	assert.Contains(t, r.body["detail"], "quota of 1 documents")
}

// slowPages holds every TenantDocuments call until release closes.
type slowPages struct {
	*mongostore.Store
	started chan struct{}
	release chan struct{}
}

func (s *slowPages) TenantDocuments(ctx context.Context, collection, after string, limit int) ([]*tenancy.Document, error) {
	s.started <- struct{}{}
	<-s.release
	return s.Store.TenantDocuments(ctx, collection, after, limit)
}

// TestTenantPageReadsBusy holds an organization's only page-read slot:
// its next page request waits the tenant wait, then gets a 503 that says
// why; a slow database is told apart from it.
func TestTenantPageReadsBusy(t *testing.T) {
	store := newStore(t, mongotest.NewDatabase(t))
	require.NoError(t, store.EnsureIndexes(t.Context()))
	slow := &slowPages{Store: store, started: make(chan struct{}, 4), release: make(chan struct{})}
	m, err := tenancy.New(slow, tenancy.WithSigningSecret(testSecret), tenancy.WithBcryptCost(tenancy.MinBcryptCost), tenancy.WithTenantPageReads(1))
	require.NoError(t, err)
	h := newHandler(t, m, httpapi.WithTenantWait(100*time.Millisecond))
	create(t, h, "Acme Corporation", "admin@acme.com", "MySecurePassword123")
	tok := login(t, h, "admin@acme.com", "MySecurePassword123")

	first := make(chan reply, 1)
	go func() { first <- do(t, h, call{method: "GET", target: "/tenant/documents", token: tok}) }()
	<-slow.started
	r := do(t, h, call{method: "GET", target: "/tenant/documents", token: tok})
	assert.Equal(t, http.StatusServiceUnavailable, r.status, "%s", r.raw)
	assert.Equal(t, "1", r.header.Get("Retry-After"))
	assert.Contains(t, r.body["detail"], "Too many page reads of this organization")
	// The first one's database call outlasts the wait too.
	time.Sleep(150 * time.Millisecond)
	close(slow.release)
	r = <-first
	assert.Equal(t, http.StatusServiceUnavailable, r.status, "%s", r.raw)
	assert.Contains(t, r.body["detail"], "The database did not answer within")
}
