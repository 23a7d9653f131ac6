package tenancy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/mongostore"
	"github.com/tenancy/tenancy/mongotest"
)

// putDocuments puts n documents of size bytes into org's tenant collection
// directly, in batches, with ids in increasing order but inserted in an
// order that is not (each batch reversed), as concurrent inserts commit.
func putDocuments(t testing.TB, store *mongostore.Store, org *tenancy.Org, n, size int) []string {
	t.Helper()
	pad := strings.Repeat("x", size)
	ids := make([]string, n)
	base := time.Now().Add(-time.Hour)
	for i := 0; i < n; i += 500 {
		var batch []any
		for j := min(i+500, n) - 1; j >= i; j-- {
			oid := bson.NewObjectIDFromTimestamp(base.Add(time.Duration(j) * time.Second))
			ids[j] = oid.Hex()
			batch = append(batch, bson.D{{Key: "_id", Value: oid}, {Key: "i", Value: j}, {Key: "pad", Value: pad}})
		}
		_, err := store.Collection(org.TenantCollection).InsertMany(t.Context(), batch)
		require.NoError(t, err)
	}
	return ids
}

// TestTenantPagesInIDOrder pages through a tenant whose insertion order
// is not its id order: every document is listed once, in id order.
func TestTenantPagesInIDOrder(t *testing.T) {
	t.Parallel()
	store := newStore(t, mongotest.NewDatabase(t))
	require.NoError(t, store.EnsureIndexes(t.Context()))
	m := newManager(t, store)
	org := createAcme(t, m)
	ids := putDocuments(t, store, org, 1200, 10)
	var got []string
	after := ""
	for range 100 {
		docs, err := m.Tenant(org.ID).List(t.Context(), after, 97)
		require.NoError(t, err)
		for _, d := range docs {
			got = append(got, d.ID)
		}
		if len(docs) < 97 {
			break
		}
		after = docs[len(docs)-1].ID
	}
	assert.Equal(t, ids, got)
}

// TestTenantQuota fills a tenant to its quota: the next insert is refused
// with a conflict naming the quota, and a delete makes room again.
func TestTenantQuota(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		m := newManager(t, store, tenancy.WithTenantQuota(3))
		org := createAcme(t, m)
		tenant := m.Tenant(org.ID)
		var first *tenancy.Document
		for i := range 3 {
			doc, err := tenant.Insert(t.Context(), map[string]any{"i": i})
			require.NoError(t, err)
			if first == nil {
				first = doc
			}
		}
		_, err := tenant.Insert(t.Context(), map[string]any{"i": 3})
		require.ErrorIs(t, err, tenancy.ErrQuotaExceeded)
		require.ErrorIs(t, err, tenancy.ErrConflict)
		var cerr *tenancy.ConflictError
		require.ErrorAs(t, err, &cerr)
		assert.Equal(t, "data", cerr.Field)
		assert.Contains(t, cerr.Message, "quota of 3 documents")
		n, err := store.CountTenantDocuments(t.Context(), org.TenantCollection)
		require.NoError(t, err)
		assert.Equal(t, int64(4), n, "three documents and the metadata, nothing more")

		require.NoError(t, tenant.Delete(t.Context(), first.ID))
		_, err = tenant.Insert(t.Context(), map[string]any{"i": 4})
		require.NoError(t, err, "a delete makes room")

		// A new Manager reads the count from the store.
		_, err = newManager(t, store, tenancy.WithTenantQuota(3)).Tenant(org.ID).Insert(t.Context(), map[string]any{"i": 5})
		require.ErrorIs(t, err, tenancy.ErrQuotaExceeded)
	})
	_, err := tenancy.New(nil, tenancy.WithTenantQuota(-1))
	require.Error(t, err)
}

// blockingPages holds every TenantDocuments call until release closes.
type blockingPages struct {
	testStore
	started chan struct{}
	release chan struct{}
}

func (s *blockingPages) TenantDocuments(ctx context.Context, collection, after string, limit int) ([]*tenancy.Document, error) {
	s.started <- struct{}{}
	<-s.release
	return s.testStore.TenantDocuments(ctx, collection, after, limit)
}

// TestTenantPageReadsPerOrganization holds one organization's page-read
// slot: its next page read waits and gets ErrReadsBusy when its context
// ends, while another organization's pages are not held up.
func TestTenantPageReadsPerOrganization(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		blocking := &blockingPages{testStore: store, started: make(chan struct{}, 8), release: make(chan struct{})}
		m := newManager(t, blocking, tenancy.WithTenantPageReads(1))
		acme := createAcme(t, m)
		globex, err := m.CreateOrg(t.Context(), tenancy.CreateOrgParams{Name: "Globex", AdminEmail: "admin@globex.com", AdminPassword: "MySecurePassword123"})
		require.NoError(t, err)

		held := make(chan error, 1)
		go func() {
			_, err := m.Tenant(acme.ID).List(t.Context(), "", 10)
			held <- err
		}()
		<-blocking.started
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err = m.Tenant(acme.ID).List(ctx, "", 10)
		var retry *tenancy.RetryError
		require.ErrorAs(t, err, &retry)
		assert.ErrorIs(t, err, tenancy.ErrReadsBusy)
		assert.Equal(t, time.Second, retry.After)

		other := make(chan error, 1)
		go func() {
			_, err := m.Tenant(globex.ID).List(t.Context(), "", 10)
			other <- err
		}()
		select {
		case <-blocking.started:
		case <-time.After(10 * time.Second):
			t.Fatal("another organization's page read waited for acme's slot")
		}
		close(blocking.release)
		require.NoError(t, <-held)
		require.NoError(t, <-other)
		if errors.Is(err, context.DeadlineExceeded) {
			t.Log("the busy error also says the context ended")
		}
	})
	_, err := tenancy.New(nil, tenancy.WithTenantPageReads(0))
	require.Error(t, err)
}
