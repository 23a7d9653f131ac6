package apitest_test

import (
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenancy/tenancy"
)

// TestDatabaseUnavailable serves the API over a driver whose database
// does not answer (a Unix socket nobody listens on): every endpoint that
// needs it answers 503 with Retry-After, not 500, within about the
// client's server selection timeout; /health answers 200.
func TestDatabaseUnavailable(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "nobody.sock")
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + url.PathEscape(sock)).
		SetServerSelectionTimeout(200 * time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(t.Context()) })
	m, err := tenancy.New(newStore(t, client.Database("down")), tenancy.WithSigningSecret(testSecret), tenancy.WithBcryptCost(tenancy.MinBcryptCost))
	require.NoError(t, err)
	h := newHandler(t, m)
	tok, err := m.IssueToken(&tenancy.Admin{ID: "0123456789abcdef01234567", Email: "a@acme.com"}, &tenancy.Membership{OrgID: "0123456789abcdef01234568", AdminID: "0123456789abcdef01234567", Role: tenancy.RoleOwner})
	require.NoError(t, err)
	bearer := tok.AccessToken
	doc := "0123456789abcdef01234569"
	for _, c := range append([]call{
		{method: "POST", target: "/org/create", body: map[string]string{"organization_name": "Acme", "email": "a@acme.com", "password": "SecurePass123"}},
		{method: "GET", target: "/org/get?organization_name=Acme"},
		{method: "PUT", target: "/org/update", token: bearer, body: map[string]string{"organization_name": "Acme", "new_organization_name": "Acme 2", "email": "a@acme.com", "password": "SecurePass123"}},
		{method: "DELETE", target: "/org/delete", token: bearer, body: map[string]string{"organization_name": "Acme"}},
		{method: "POST", target: "/admin/login", body: map[string]string{"email": "a@acme.com", "password": "SecurePass123"}},
		{method: "POST", target: "/admin/logout", token: bearer},
		{method: "PUT", target: "/admin/password", token: bearer, body: map[string]string{"current_password": "SecurePass123", "new_password": "SecurePass456"}},
		{method: "POST", target: "/tenant/documents", token: bearer, body: map[string]any{"a": 1}},
		{method: "GET", target: "/tenant/documents", token: bearer},
		{method: "GET", target: "/tenant/documents/" + doc, token: bearer},
		{method: "DELETE", target: "/tenant/documents/" + doc, token: bearer},
		{method: "GET", target: "/ready"},
	}, memberCalls(bearer)...) {
		start := time.Now()
		r := do(t, h, c)
		took := time.Since(start)
		assert.Equal(t, http.StatusServiceUnavailable, r.status, "%s %s: %s", c.method, c.target, r.raw)
		if c.target != "/ready" {
			assert.NotEmpty(t, r.header.Get("Retry-After"), "%s %s", c.method, c.target)
			assert.Contains(t, r.body["detail"], "database", "%s %s says why", c.method, c.target)
		}
		assert.Less(t, took, 5*time.Second, "%s %s", c.method, c.target)
	}
	r := do(t, h, call{method: "GET", target: "/health"})
	assert.Equal(t, http.StatusOK, r.status)
}
