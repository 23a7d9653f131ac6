package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenancy/tenancy/internal/embeddb"
)

// TestEmbeddedTenantDatabase runs the server binary on a data directory
// whose tenant collections sit beside the organizations, as servers
// before TENANT_DB kept them (TENANT_DB=PRIMARY_DB does the same), then
// restarts it with the default: the collections move to their own
// database with every document, the API reads them there, pages come in
// order, and renames stay in that database. The database files are
// checked after the server stopped.
func TestEmbeddedTenantDatabase(t *testing.T) {
	bin := buildServer(t)
	dataDir := t.TempDir()
	s := startServer(t, bin, dataDir, "", "TENANT_DB=enterprise_db")
	tokens := map[string]string{}
	ids := map[string][]string{}
	for _, name := range []string{"Layout One", "Layout Two"} {
		email := strings.ToLower(strings.ReplaceAll(name, " ", "")) + "@layout.test"
		status, body := s.do(t, "POST", "/org/create", "", map[string]string{"organization_name": name, "email": email, "password": "MySecurePassword123"})
		require.Equal(t, 201, status, body)
		status, tok := s.do(t, "POST", "/admin/login", "", map[string]string{"email": email, "password": "MySecurePassword123"})
		require.Equal(t, 200, status, tok)
		tokens[name] = tok["access_token"].(string)
		for i := range 45 {
			status, doc := s.do(t, "POST", "/tenant/documents", tokens[name], map[string]any{"n": i})
			require.Equal(t, 201, status, doc)
			ids[name] = append(ids[name], doc["id"].(string))
		}
	}
	s.stop(t)

	s = startServer(t, bin, dataDir, "")
	assert.Contains(t, s.logs.String(), "moved tenant collections to their own database")
	for name, want := range ids {
		var got []string
		after := ""
		for {
			status, page := s.do(t, "GET", "/tenant/documents?limit=20&after="+after, tokens[name], nil)
			require.Equal(t, 200, status, page)
			for _, d := range page["documents"].([]any) {
				got = append(got, d.(map[string]any)["id"].(string))
			}
			next, _ := page["next_after"].(string)
			if next == "" {
				break
			}
			after = next
		}
		assert.Equal(t, want, got, "%s: every document once, in id order", name)
	}
	status, renamed := s.do(t, "PUT", "/org/update", tokens["Layout One"], map[string]string{
		"organization_name": "Layout Three", "email": "layoutone@layout.test", "password": "MySecurePassword123",
	})
	require.Equal(t, 200, status, renamed)
	assert.Equal(t, float64(46), renamed["documents_migrated"])
	s.stop(t)

	uri, stop, err := embeddb.Start(filepath.Join(dataDir, "db"))
	require.NoError(t, err)
	defer stop()
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	require.NoError(t, err)
	defer c.Disconnect(context.Background()) //nolint:errcheck
	primary, err := c.Database("enterprise_db").ListCollectionNames(t.Context(), bson.D{})
	require.NoError(t, err)
	tenants, err := c.Database("enterprise_db_tenants").ListCollectionNames(t.Context(), bson.D{})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"tenant_layout_three", "tenant_layout_two"}, tenants)
	assert.Contains(t, primary, "org_registry")
	assert.NotContains(t, fmt.Sprint(primary), "tenant_", "no tenant collection is left beside the organizations")
}

// TestTenantDatabaseRefusedOverStrandedTenants starts the server binary on
// a MongoDB-wire server (MONGO_URI) whose PRIMARY_DB holds a tenant
// collection, with TENANT_DB naming another database: the server must
// refuse to start, saying what to do, rather than serve organizations
// without their data.
func TestTenantDatabaseRefusedOverStrandedTenants(t *testing.T) {
	bin := buildServer(t)
	uri := startDatabase(t)
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	require.NoError(t, err)
	defer c.Disconnect(context.Background()) //nolint:errcheck
	_, err = c.Database("stranded").Collection("tenant_acme").InsertOne(t.Context(), bson.D{{Key: "n", Value: 1}})
	require.NoError(t, err)

	// A server that starts instead of refusing is killed after a minute.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = t.TempDir()
	cmd.Env = cleanEnv("ADDR=127.0.0.1:0", "DATA_DIR="+t.TempDir(), "MONGO_URI="+uri, "PRIMARY_DB=stranded", "TENANT_DB=stranded_data")
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the server must refuse to start: %s", out)
	require.NoError(t, ctx.Err(), "the server started instead of refusing: %s", out)
	assert.Contains(t, string(out), "PRIMARY_DB stranded holds 1 tenant collections (tenant_acme, ...) but TENANT_DB is stranded_data")
	n, err := c.Database("stranded").Collection("tenant_acme").CountDocuments(t.Context(), bson.D{})
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "nothing was moved or dropped")
}
