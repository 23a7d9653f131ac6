package embeddb_test

import (
	"context"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/internal/embeddb"
	"github.com/tenancy/tenancy/internal/heapsample"
	"github.com/tenancy/tenancy/mongostore"
	"github.com/tenancy/tenancy/storetest"
)

// embeddedStore returns a store configured as the reference server
// configures it on its embedded database: tenants in their own database,
// counts from collection statistics, pages by the ids' index; on an
// embedded FerretDB of its own, whatever server the other tests use.
func embeddedStore(t *testing.T, opts ...*options.ClientOptions) *mongostore.Store {
	t.Helper()
	dir := t.TempDir()
	uri, stop, err := embeddb.Start(dir)
	require.NoError(t, err)
	t.Cleanup(stop)
	ids, err := embeddb.NewIDOrder(dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ids.Close() })
	c, err := mongo.Connect(append([]*options.ClientOptions{options.Client().ApplyURI(uri)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	s := newStore(t, c.Database("primary"), mongostore.WithTenantDatabase(c.Database("tenants")),
		mongostore.WithCollStatsCount(), mongostore.WithIDOrder(ids))
	require.NoError(t, s.EnsureIndexes(t.Context()))
	return s
}

// TestConformanceEmbedded runs the suite on the reference server's
// embedded configuration.
func TestConformanceEmbedded(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tenancy.Store { return embeddedStore(t) })
}

// TestEmbeddedPageReadsItsDocuments pages a tenant of 600 documents on
// the embedded configuration: a page of 20 sends 20 finds, each by _id
// alone, and nothing that reads the collection; every document is listed
// once, in id order, whatever the order of insertion.
func TestEmbeddedPageReadsItsDocuments(t *testing.T) {
	var mu sync.Mutex
	var cmds []bson.Raw
	monitor := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		mu.Lock()
		defer mu.Unlock()
		cmds = append(cmds, append(bson.Raw(nil), e.Command...))
	}}
	s := embeddedStore(t, options.Client().SetMonitor(monitor))
	ctx := t.Context()
	require.NoError(t, s.CreateTenantCollection(ctx, "tenant_p", "507f1f77bcf86cd799439011", time.Now()))
	want := make([]string, 600)
	for i := range want {
		want[i] = bson.NewObjectID().Hex()
	}
	for _, i := range rand.Perm(len(want)) {
		require.NoError(t, s.AddTenantDocument(ctx, "tenant_p", &tenancy.Document{ID: want[i], Data: map[string]any{"i": int64(i)}}))
	}
	var got []string
	after := ""
	for {
		mu.Lock()
		cmds = nil
		mu.Unlock()
		page, err := s.TenantDocuments(ctx, "tenant_p", after, 20)
		require.NoError(t, err)
		mu.Lock()
		sent := cmds
		mu.Unlock()
		assert.Len(t, sent, max(len(page), 0), "one command per document")
		for _, c := range sent {
			assert.Equal(t, "find", c.Index(0).Key(), "%v", c)
			filter, ok := c.Lookup("filter").DocumentOK()
			require.True(t, ok, "%v", c)
			elems, _ := filter.Elements()
			assert.True(t, len(elems) == 1 && elems[0].Key() == "_id" && elems[0].Value().Type == bson.TypeObjectID, "by _id alone: %v", filter)
		}
		if len(page) == 0 {
			break
		}
		for _, d := range page {
			got = append(got, d.ID)
		}
		after = page[len(page)-1].ID
	}
	assert.Equal(t, want, got)
}

// TestTenantPageMemoryIsBounded reads pages of 20 from a tenant of 3,000
// documents of 4 KB (12 MB) on the embedded configuration and samples the
// process's heap meanwhile (the embedded database runs in this process):
// a page must not hold the collection, as a server-side sort would.
func TestTenantPageMemoryIsBounded(t *testing.T) {
	s := embeddedStore(t)
	m, err := tenancy.New(s, tenancy.WithSigningSecret([]byte("q8Zr3vN1xK7pL2mW9tY4bH6cJ0dF5gS8aE1uI3oP7nM=")),
		tenancy.WithBcryptCost(tenancy.MinBcryptCost))
	require.NoError(t, err)
	ctx := t.Context()
	org, err := m.CreateOrg(ctx, tenancy.CreateOrgParams{Name: "Acme Corporation", AdminEmail: "admin@acme.com", AdminPassword: "MySecurePassword123"})
	require.NoError(t, err)
	pad := strings.Repeat("x", 4096)
	ids := make([]string, 3000)
	base := time.Now().Add(-time.Hour)
	for i := 0; i < len(ids); i += 500 {
		var batch []any
		// Inserted in reverse order of their ids within each batch.
		for j := min(i+500, len(ids)) - 1; j >= i; j-- {
			oid := bson.NewObjectIDFromTimestamp(base.Add(time.Duration(j) * time.Second))
			ids[j] = oid.Hex()
			batch = append(batch, bson.D{{Key: "_id", Value: oid}, {Key: "i", Value: j}, {Key: "pad", Value: pad}})
		}
		_, err := s.Collection(org.TenantCollection).InsertMany(ctx, batch)
		require.NoError(t, err)
	}

	// Collect often, so that the peak is what the page holds, not the
	// garbage the collector has yet to reach.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	for _, after := range []string{"", ids[1499]} {
		runtime.GC()
		stop := heapsample.Start()
		docs, err := m.Tenant(org.ID).List(ctx, after, 20)
		grew := stop()
		require.NoError(t, err)
		require.Len(t, docs, 20)
		from := 0
		if after != "" {
			from = 1500
		}
		assert.Equal(t, ids[from], docs[0].ID, "the page starts after %q", after)
		t.Logf("page after %q: heap grew by at most %.1f MiB", after, float64(grew)/(1<<20))
		assert.Less(t, grew, uint64(6<<20), "a page of 20 from 12 MB of documents")
	}
}

// newStore is mongostore.New that fails the test on an error.
func newStore(t testing.TB, db *mongo.Database, opts ...mongostore.Option) *mongostore.Store {
	t.Helper()
	s, err := mongostore.New(db, opts...)
	require.NoError(t, err)
	return s
}
