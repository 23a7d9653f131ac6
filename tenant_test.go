package tenancy_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/memstore"
	"github.com/tenancy/tenancy/mongostore"
	"github.com/tenancy/tenancy/mongotest"
)

func TestTenantDocuments(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		m := newManager(t, store)
		org := createAcme(t, m)
		tn := m.Tenant(org.ID)

		var ids []string
		for i := range 5 {
			doc, err := tn.Insert(ctx, map[string]any{"n": int64(i), "tags": []any{"x"}, "at": map[string]any{"ok": true}})
			require.NoError(t, err)
			assert.Len(t, doc.ID, 24)
			ids = append(ids, doc.ID)
		}
		assert.True(t, slices.IsSorted(ids), "ids grow with insertion: %v", ids)

		got, err := tn.Get(ctx, ids[3])
		require.NoError(t, err)
		assert.Equal(t, map[string]any{"n": int64(3), "tags": []any{"x"}, "at": map[string]any{"ok": true}}, got.Data)

		page, err := tn.List(ctx, "", 2)
		require.NoError(t, err)
		require.Len(t, page, 2)
		assert.Equal(t, ids[:2], []string{page[0].ID, page[1].ID})
		page, err = tn.List(ctx, page[1].ID, 10)
		require.NoError(t, err)
		require.Len(t, page, 3, "the metadata document is not a tenant document")

		require.NoError(t, tn.Delete(ctx, ids[0]))
		assert.ErrorIs(t, tn.Delete(ctx, ids[0]), tenancy.ErrNotFound)
		_, err = tn.Get(ctx, ids[0])
		assert.ErrorIs(t, err, tenancy.ErrNotFound)

		// Renamed: the handle follows the organization.
		_, err = m.RenameOrg(ctx, org.ID, "Acme Global Inc")
		require.NoError(t, err)
		page, err = tn.List(ctx, "", 10)
		require.NoError(t, err)
		assert.Len(t, page, 4)

		// Another organization sees none of it.
		other, err := m.CreateOrg(ctx, tenancy.CreateOrgParams{Name: "Globex", AdminEmail: "admin@globex.com", AdminPassword: "password123"})
		require.NoError(t, err)
		_, err = m.Tenant(other.ID).Get(ctx, ids[1])
		assert.ErrorIs(t, err, tenancy.ErrNotFound)
		page, err = m.Tenant(other.ID).List(ctx, "", 10)
		require.NoError(t, err)
		assert.Empty(t, page)
		assert.ErrorIs(t, m.Tenant(other.ID).Delete(ctx, ids[1]), tenancy.ErrNotFound)

		require.NoError(t, m.DeleteOrg(ctx, org.ID))
		_, err = tn.Insert(ctx, map[string]any{"late": true})
		assert.ErrorIs(t, err, tenancy.ErrNotFound, "deleted organization")
		_, err = m.Tenant("000000000000000000000000").List(ctx, "", 1)
		assert.ErrorIs(t, err, tenancy.ErrNotFound, "unknown organization")
	})
}

func TestTenantDocumentValidation(t *testing.T) {
	ctx := t.Context()
	m := newManager(t, memstore.New())
	org := createAcme(t, m)
	tn := m.Tenant(org.ID)

	deep := map[string]any{}
	cur := deep
	for range tenancy.MaxDocumentDepth + 1 {
		next := map[string]any{}
		cur["d"] = next
		cur = next
	}
	tests := []struct {
		desc  string
		data  map[string]any
		field string
	}{
		{"nil", nil, "data"},
		{"own _id", map[string]any{"_id": "x"}, "data._id"},
		{"operator key", map[string]any{"$ne": nil}, "data.$ne"},
		{"nested operator key", map[string]any{"a": map[string]any{"$gt": 1}}, "data.a.$gt"},
		{"dotted key", map[string]any{"a.b": 1}, "data.a.b"},
		{"NUL in key", map[string]any{"a\x00": 1}, "data.a\x00"},
		{"NaN", map[string]any{"x": math.NaN()}, "data.x"},
		{"infinity in array", map[string]any{"x": []any{1.0, math.Inf(1)}}, "data.x[1]"},
		{"unsupported type", map[string]any{"x": struct{}{}}, "data.x"},
		{"integer past int64", map[string]any{"x": []any{uint64(math.MaxInt64) + 1}}, "data.x[0]"},
		{"too deep", deep, ""},
		{"metadata stamp", map[string]any{"metadata": map[string]any{"org_id": "x"}}, "data.metadata.org_id"},
		{"metadata stamp in an array", map[string]any{"metadata": []any{"a", map[string]any{"org_id": "x"}}}, "data.metadata[1].org_id"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			_, err := tn.Insert(ctx, tt.data)
			fields := fieldsOf(t, err)
			if tt.field != "" {
				assert.Contains(t, fields, tt.field)
			}
		})
	}
	for _, id := range []string{"", "xyz", "0123456789ABCDEF01234567", "0123456789abcdef0123456", "0123456789abcdef012345678"} {
		_, err := tn.Get(ctx, id)
		assert.Contains(t, fieldsOf(t, err), "id", "id %q", id)
		assert.Contains(t, fieldsOf(t, tn.Delete(ctx, id)), "id")
	}
	_, err := tn.List(ctx, "nope", 10)
	assert.Contains(t, fieldsOf(t, err), "after")
	for _, limit := range []int{0, -1, tenancy.MaxListLimit + 1} {
		_, err := tn.List(ctx, "", limit)
		assert.Contains(t, fieldsOf(t, err), "limit")
	}
	page, err := tn.List(ctx, "", 10)
	require.NoError(t, err)
	assert.Empty(t, page, "nothing invalid was written")
}

// noRenameStore refuses to rename collections, as a server may.
type noRenameStore struct{ testStore }

func (noRenameStore) RenameTenantCollection(context.Context, string, string) error {
	return fmt.Errorf("renames refused: %w", errors.ErrUnsupported)
}

// eachCopyStore runs fn on memstore and mongostore where renames copy.
func eachCopyStore(t *testing.T, fn func(t *testing.T, store testStore)) {
	t.Parallel()
	t.Run("memstore", func(t *testing.T) { fn(t, noRenameStore{memstore.New()}) })
	t.Run("mongostore", func(t *testing.T) {
		s := newStore(t, mongotest.NewDatabase(t), mongostore.WithoutRenameCollection(), mongostore.WithCopyBatchSize(10))
		require.NoError(t, s.EnsureIndexes(t.Context()))
		fn(t, s)
	})
}

func TestRenameByCopy(t *testing.T) {
	eachCopyStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		m := newManager(t, store)
		org := createAcme(t, m)
		tn := m.Tenant(org.ID)
		var ids []string
		for i := range 95 {
			doc, err := tn.Insert(ctx, map[string]any{"i": int64(i)})
			require.NoError(t, err)
			ids = append(ids, doc.ID)
		}

		res, err := m.RenameOrg(ctx, org.ID, "Acme Global Inc")
		require.NoError(t, err)
		assert.Equal(t, int64(96), res.DocumentsMigrated, "every document and the metadata document")
		assert.Equal(t, "tenant_acme_global_inc", res.CurrentCollection)
		assert.False(t, res.Org.PendingCopy)
		n, err := store.CountTenantDocuments(ctx, res.CurrentCollection)
		require.NoError(t, err)
		assert.Equal(t, res.DocumentsMigrated, n, "documents_migrated is the new collection's count")

		exists, err := store.TenantCollectionExists(ctx, "tenant_acme_corporation")
		require.NoError(t, err)
		assert.False(t, exists, "the source is dropped")
		owner, err := store.TenantCollectionOwner(ctx, res.CurrentCollection)
		require.NoError(t, err)
		assert.Equal(t, org.ID, owner, "the owner stamp was copied")
		docs, err := tn.List(ctx, "", tenancy.MaxListLimit)
		require.NoError(t, err)
		var got []string
		for _, d := range docs {
			got = append(got, d.ID)
		}
		assert.Equal(t, ids, got, "every document, once")
		_, err = m.CreateOrg(ctx, tenancy.CreateOrgParams{Name: "Acme Corporation", AdminEmail: "new@acme.com", AdminPassword: "password123"})
		assert.NoError(t, err, "the old name is free")
	})
}

// TestRenameByCopyUndoesPartialWork fails a copying rename at each step
// before its source is dropped and checks that nothing changed.
func TestRenameByCopyUndoesPartialWork(t *testing.T) {
	faults := []fault{{"UpdateOrg", 2}, {"CopyTenantDocuments", 1}}
	eachFault(t, faults, func(t *testing.T, store *failingStore) {
		ctx := t.Context()
		base := noRenameStore{store.testStore}
		store.testStore = base
		org := createAcme(t, newManager(t, base))
		for i := range 9 {
			require.NoError(t, putDoc(ctx, base, org.TenantCollection, map[string]any{"i": i}))
		}
		store.calls = nil
		m := newManager(t, store)
		_, err := m.RenameOrg(ctx, org.ID, "Acme Global Inc")
		require.ErrorIs(t, err, errInjected)

		got, err := m.OrgByID(ctx, org.ID)
		require.NoError(t, err)
		assert.Equal(t, tenancy.OrgActive, got.State)
		assert.Equal(t, "acme-corporation", got.Identifier)
		assert.False(t, got.PendingCopy)
		n, err := base.CountTenantDocuments(ctx, got.TenantCollection)
		require.NoError(t, err)
		assert.Equal(t, int64(10), n)
		exists, err := base.TenantCollectionExists(ctx, "tenant_acme_global_inc")
		require.NoError(t, err)
		assert.False(t, exists, "the partial copy is dropped")
		_, err = m.RenameOrg(ctx, org.ID, "Acme Global Inc")
		assert.NoError(t, err, "the new name is free again")
	})
}

// hookStore runs hook once, just before the first insert of a tenant
// document: the moment a write has read its organization and not yet
// written, which another process's rename or delete can overtake.
type hookStore struct {
	testStore
	once sync.Once
	hook func()
}

func (s *hookStore) AddTenantDocument(ctx context.Context, collection string, doc *tenancy.Document) error {
	s.once.Do(s.hook)
	return s.testStore.AddTenantDocument(ctx, collection, doc)
}

// TestOvertakenInsert makes another process rename or delete the
// organization between a tenant insert's read of the organization and
// its write, so that the write lands in a collection that has moved away.
func TestOvertakenInsert(t *testing.T) {
	cases := map[string]func(t *testing.T, other *tenancy.Manager, org *tenancy.Org){
		"rename": func(t *testing.T, other *tenancy.Manager, org *tenancy.Org) {
			_, err := other.RenameOrg(t.Context(), org.ID, "Acme Global Inc")
			require.NoError(t, err)
		},
		"two renames": func(t *testing.T, other *tenancy.Manager, org *tenancy.Org) {
			_, err := other.RenameOrg(t.Context(), org.ID, "Acme Global Inc")
			require.NoError(t, err)
			_, err = other.RenameOrg(t.Context(), org.ID, "Acme Three")
			require.NoError(t, err)
		},
		"rename, then the old name taken": func(t *testing.T, other *tenancy.Manager, org *tenancy.Org) {
			_, err := other.RenameOrg(t.Context(), org.ID, "Acme Global Inc")
			require.NoError(t, err)
			_, err = other.CreateOrg(t.Context(), tenancy.CreateOrgParams{Name: "Acme Corporation", AdminEmail: "new@acme.com", AdminPassword: "password123"})
			require.NoError(t, err)
		},
		"delete": func(t *testing.T, other *tenancy.Manager, org *tenancy.Org) {
			require.NoError(t, other.DeleteOrg(t.Context(), org.ID))
		},
	}
	for name, overtake := range cases {
		t.Run(name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, store testStore) {
				ctx := t.Context()
				other := newManager(t, store)
				org := createAcme(t, other)
				before, err := other.Tenant(org.ID).Insert(ctx, map[string]any{"n": int64(0)})
				require.NoError(t, err)

				hooked := &hookStore{testStore: store}
				hooked.hook = func() { overtake(t, other, org) }
				doc, err := newManager(t, hooked).Tenant(org.ID).Insert(ctx, map[string]any{"n": int64(1)})

				cur, getErr := other.OrgByID(ctx, org.ID)
				if name == "delete" {
					assert.ErrorIs(t, err, tenancy.ErrNotFound, "the insert is refused, not acknowledged")
					assert.ErrorIs(t, getErr, tenancy.ErrNotFound)
					assertNoTrace(t, store, "acme-corporation", "admin@acme.com")
					return
				}
				require.NoError(t, err, "the insert is acknowledged")
				require.NoError(t, getErr)
				assert.NotEqual(t, "tenant_acme_corporation", cur.TenantCollection)
				for _, id := range []string{before.ID, doc.ID} {
					_, err := other.Tenant(org.ID).Get(ctx, id)
					assert.NoError(t, err, "document %s is in the current collection", id)
				}
				n, err := store.CountTenantDocuments(ctx, cur.TenantCollection)
				require.NoError(t, err)
				assert.Equal(t, int64(3), n, "two documents and the metadata document, each once")

				old, err := store.OrgByIdentifier(ctx, "acme-corporation")
				if err == nil {
					// A new organization took the old name: the stray
					// insert is not in its collection.
					assert.NotEqual(t, org.ID, old.ID)
					n, err := store.CountTenantDocuments(ctx, old.TenantCollection)
					require.NoError(t, err)
					assert.Equal(t, int64(1), n, "only the new organization's metadata document")
					return
				}
				exists, err := store.TenantCollectionExists(ctx, "tenant_acme_corporation")
				require.NoError(t, err)
				assert.False(t, exists, "the collection the insert made under the old name is swept")
				exists, err = store.TenantCollectionExists(ctx, "tenant_acme_global_inc")
				require.NoError(t, err)
				assert.Equal(t, cur.TenantCollection == "tenant_acme_global_inc", exists, "no collection under a name left behind")
				_, err = other.CreateOrg(ctx, tenancy.CreateOrgParams{Name: "Acme Corporation", AdminEmail: "new@acme.com", AdminPassword: "password123"})
				assert.NoError(t, err, "the old name is free")
			})
		})
	}
}

// TestTenantWritesDuringRenames runs writers through two Managers, as two
// server processes on one database, while one of them renames the
// organization again and again, by renameCollection and by copying.
// Every acknowledged insert must be in the final collection, once, and no
// collection may be left under an old name. It runs with caches too: one
// Manager with the sole-writer cache doing it all, and two with caches
// whose entries would stay an hour.
func TestTenantWritesDuringRenames(t *testing.T) {
	for _, tc := range []struct{ mode, cache string }{
		{"renameCollection", ""}, {"copy", ""}, {"renameCollection", "sole writer"}, {"copy", "bounded"},
	} {
		mode := tc.mode
		t.Run(strings.TrimSuffix(mode+" "+tc.cache, " "), func(t *testing.T) {
			t.Parallel()
			db := mongotest.NewDatabase(t)
			var opts []mongostore.Option
			if mode == "copy" {
				opts = append(opts, mongostore.WithoutRenameCollection(), mongostore.WithCopyBatchSize(50))
			}
			storeA := newStore(t, db, opts...)
			require.NoError(t, storeA.EnsureIndexes(t.Context()))
			storeB := newStore(t, db, opts...)
			a, b := newManager(t, storeA), newManager(t, storeB)
			switch tc.cache {
			case "sole writer":
				a = newManager(t, storeA, tenancy.WithSoleWriterCache(1000))
				b = a
			case "bounded":
				a = newManager(t, storeA, tenancy.WithCache(1000, time.Hour))
				b = newManager(t, storeB, tenancy.WithCache(1000, time.Hour))
			}
			org := createAcme(t, a)

			// Writers stop between inserts, so that every insert they
			// start is answered: none is left unacknowledged.
			var stopped atomic.Bool
			var acked sync.Map
			var n atomic.Int64
			var wg sync.WaitGroup
			for w := range 6 {
				m := []*tenancy.Manager{a, b}[w%2]
				wg.Go(func() {
					for i := 0; !stopped.Load(); i++ {
						doc, err := m.Tenant(org.ID).Insert(t.Context(), map[string]any{"writer": int64(w), "i": int64(i)})
						if err != nil {
							t.Errorf("writer %d: %v", w, err)
							return
						}
						acked.Store(doc.ID, true)
						n.Add(1)
					}
				})
			}

			names := []string{"Acme Corporation"}
			for i := range 6 {
				// Let the writers make progress between renames.
				for start := n.Load(); n.Load() < start+20 && !t.Failed(); {
					time.Sleep(time.Millisecond)
				}
				name := fmt.Sprintf("Acme %d", i+1)
				_, err := a.RenameOrg(t.Context(), org.ID, name)
				require.NoError(t, err)
				names = append(names, name)
			}
			stopped.Store(true)
			wg.Wait()

			cur, err := a.OrgByID(t.Context(), org.ID)
			require.NoError(t, err)
			count, err := storeA.CountTenantDocuments(t.Context(), cur.TenantCollection)
			require.NoError(t, err)
			assert.Equal(t, n.Load()+1, count, "the acknowledged inserts and the metadata document")
			t.Logf("%d acknowledged inserts across %d renames; %d runs overtaken in this process so far", n.Load(), len(names)-1, tenancy.OvertakenRuns())

			seen := 0
			for after := ""; ; {
				page, err := a.Tenant(org.ID).List(t.Context(), after, tenancy.MaxListLimit)
				require.NoError(t, err)
				if len(page) == 0 {
					break
				}
				for _, d := range page {
					_, ok := acked.Load(d.ID)
					assert.True(t, ok, "document %s was acknowledged", d.ID)
					seen++
				}
				after = page[len(page)-1].ID
			}
			assert.Equal(t, int(n.Load()), seen)

			for _, name := range names[:len(names)-1] {
				exists, err := storeA.TenantCollectionExists(t.Context(), tenancy.TenantCollection(mustIdentifier(t, name)))
				require.NoError(t, err)
				assert.False(t, exists, "no collection under the old name %q", name)
			}
		})
	}
}

func mustIdentifier(t *testing.T, name string) string {
	t.Helper()
	id, err := tenancy.Identifier(name)
	require.NoError(t, err)
	return id
}

// TestTenantCallSettlesFailedRename fails a copying rename after its
// source is dropped, where it can no longer be undone: the process lives
// and releases the lock, so the next tenant call completes the rename at
// once instead of waiting for the lease.
func TestTenantCallSettlesFailedRename(t *testing.T) {
	eachCopyStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		m := newManager(t, store)
		org := createAcme(t, m)
		doc, err := m.Tenant(org.ID).Insert(ctx, map[string]any{"n": int64(1)})
		require.NoError(t, err)

		failing := &failingStore{testStore: store, method: "DropTenantCollection", nth: 1, after: true}
		_, err = newManager(t, failing).RenameOrg(ctx, org.ID, "Acme Global Inc")
		require.ErrorIs(t, err, errInjected)
		left, err := store.OrgByID(ctx, org.ID)
		require.NoError(t, err)
		require.Equal(t, tenancy.OrgRenaming, left.State, "past the point of undo, the rename is left to complete")

		_, err = m.Tenant(org.ID).Insert(ctx, map[string]any{"n": int64(2)})
		require.NoError(t, err)
		cur, err := m.OrgByID(ctx, org.ID)
		require.NoError(t, err)
		assert.Equal(t, tenancy.OrgActive, cur.State)
		assert.Equal(t, "tenant_acme_global_inc", cur.TenantCollection, "completed, not undone")
		_, err = m.Tenant(org.ID).Get(ctx, doc.ID)
		assert.NoError(t, err)
	})
}

// TestSettleRenameOfUnstampedCollection settles a crashed rename of a
// collection without an owner stamp (made before stamps, or by another
// tool) after an overtaken write made its old name again: the rename must
// complete with every document, not roll back onto the stray.
func TestSettleRenameOfUnstampedCollection(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		m := newManager(t, store)
		org := createAcme(t, m)
		require.NoError(t, store.DropTenantCollection(ctx, org.TenantCollection))
		for i := range 5 {
			require.NoError(t, putDoc(ctx, store, org.TenantCollection, map[string]any{"i": i}))
		}
		dying := &failingStore{testStore: store, method: "UpdateOrg", nth: 2, crash: true}
		_, err := newManager(t, dying).RenameOrg(ctx, org.ID, "Acme Global Inc")
		require.Error(t, err)
		require.NoError(t, putDoc(ctx, store, "tenant_acme_corporation", map[string]any{"stray": true}))

		later := func() time.Time { return time.Now().Add(tenancy.DefaultOperationLease + time.Minute) }
		rep, err := newManager(t, store, tenancy.WithClock(later)).Recover(ctx)
		require.NoError(t, err)
		assert.Equal(t, 1, rep.RenamesSettled)
		got, err := m.OrgByID(ctx, org.ID)
		require.NoError(t, err)
		assert.Equal(t, "tenant_acme_global_inc", got.TenantCollection)
		n, err := store.CountTenantDocuments(ctx, got.TenantCollection)
		require.NoError(t, err)
		assert.Equal(t, int64(5), n)
		exists, err := store.TenantCollectionExists(ctx, "tenant_acme_corporation")
		require.NoError(t, err)
		assert.False(t, exists, "the stray is dropped")
	})
}

// TestDeleteOrgWithLostCollections deletes an organization whose rename
// was interrupted and whose collections were both dropped by hand.
func TestDeleteOrgWithLostCollections(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		m := newManager(t, store)
		org := createAcme(t, m)
		require.NoError(t, store.ReserveName(ctx, "acme-global-inc", org.ID, time.Now()))
		org.State = tenancy.OrgRenaming
		org.PendingName, org.PendingIdentifier, org.PendingCollection = "Acme Global Inc", "acme-global-inc", "tenant_acme_global_inc"
		require.NoError(t, store.UpdateOrg(ctx, org))
		require.NoError(t, store.DropTenantCollection(ctx, org.TenantCollection))

		require.NoError(t, m.DeleteOrg(ctx, org.ID))
		assertNoTrace(t, store, "acme-corporation", "admin@acme.com")
		for _, name := range []string{"Acme Corporation", "Acme Global Inc"} {
			_, err := m.CreateOrg(ctx, tenancy.CreateOrgParams{Name: name, AdminEmail: fmt.Sprintf("%d@acme.com", len(name)), AdminPassword: "password123"})
			assert.NoError(t, err, "%q is free", name)
		}
	})
}

// releaseBlockingStore holds a release of one name until told to go on.
type releaseBlockingStore struct {
	testStore
	name          string
	reached, cont chan struct{}
	once          sync.Once
}

func (s *releaseBlockingStore) ReleaseName(ctx context.Context, identifier string, org tenancy.OrgID) error {
	if identifier == s.name {
		s.once.Do(func() { close(s.reached); <-s.cont })
	}
	return s.testStore.ReleaseName(ctx, identifier, org)
}

// TestOvertakenInsertBeforeNameRelease lands an overtaken insert after
// the rename dropped strays under the old name but before it released the
// name: the writer must wait for the name and drop the stray itself.
func TestOvertakenInsertBeforeNameRelease(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		m := newManager(t, store)
		org := createAcme(t, m)
		renamer := &releaseBlockingStore{testStore: store, name: "acme-corporation", reached: make(chan struct{}), cont: make(chan struct{})}
		renamed := make(chan error, 1)
		hooked := &hookStore{testStore: store, hook: func() {
			go func() {
				_, err := newManager(t, renamer).RenameOrg(ctx, org.ID, "Acme Global Inc")
				renamed <- err
			}()
			<-renamer.reached
			// Let the insert land now; release the name a little later.
			time.AfterFunc(100*time.Millisecond, func() { close(renamer.cont) })
		}}
		doc, err := newManager(t, hooked).Tenant(org.ID).Insert(ctx, map[string]any{"n": int64(1)})
		require.NoError(t, err)
		require.NoError(t, <-renamed)

		_, err = m.Tenant(org.ID).Get(ctx, doc.ID)
		assert.NoError(t, err, "the insert is in the new collection")
		exists, err := store.TenantCollectionExists(ctx, "tenant_acme_corporation")
		require.NoError(t, err)
		assert.False(t, exists, "the writer dropped the stray once the name was free")
		_, err = m.CreateOrg(ctx, tenancy.CreateOrgParams{Name: "Acme Corporation", AdminEmail: "new@acme.com", AdminPassword: "password123"})
		assert.NoError(t, err, "the old name is free")
	})
}
