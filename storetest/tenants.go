package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
)

func testTenantCollections(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	owner := tenancy.OrgID(newID())
	const a, b = "tenant_alpha", "tenant_beta"
	created := now()

	exists, err := s.TenantCollectionExists(ctx, a)
	require.NoError(t, err)
	assert.False(t, exists)
	n, err := s.CountTenantDocuments(ctx, a)
	require.NoError(t, err)
	assert.Zero(t, n, "a missing collection counts 0")

	require.NoError(t, s.CreateTenantCollection(ctx, a, owner, created))
	assert.ErrorIs(t, s.CreateTenantCollection(ctx, a, owner, created), tenancy.ErrConflict, "create twice")
	exists, err = s.TenantCollectionExists(ctx, a)
	require.NoError(t, err)
	assert.True(t, exists)
	n, err = s.CountTenantDocuments(ctx, a)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "a new tenant collection holds its metadata document")
	got, err := s.TenantCollectionOwner(ctx, a)
	require.NoError(t, err)
	assert.Equal(t, owner, got, "the metadata names the owner")
	_, err = s.TenantCollectionOwner(ctx, "tenant_missing")
	assert.ErrorIs(t, err, tenancy.ErrNotFound, "no collection, no owner")

	want := int64(1)
	for i := range 25 {
		require.NoError(t, s.AddTenantDocument(ctx, a, &tenancy.Document{ID: newID(), Data: map[string]any{"n": int64(i)}}))
	}
	want += 25

	require.NoError(t, s.RenameTenantCollection(ctx, a, b))
	n, err = s.CountTenantDocuments(ctx, b)
	require.NoError(t, err)
	assert.Equal(t, want, n, "rename keeps every document")
	got, err = s.TenantCollectionOwner(ctx, b)
	require.NoError(t, err)
	assert.Equal(t, owner, got, "the owner moves with the collection")
	exists, err = s.TenantCollectionExists(ctx, a)
	require.NoError(t, err)
	assert.False(t, exists, "the old collection is gone")

	assert.ErrorIs(t, s.RenameTenantCollection(ctx, a, b), tenancy.ErrNotFound, "source missing")
	require.NoError(t, s.CreateTenantCollection(ctx, a, owner, created))
	assert.ErrorIs(t, s.RenameTenantCollection(ctx, a, b), tenancy.ErrConflict, "target exists")
	n, err = s.CountTenantDocuments(ctx, b)
	require.NoError(t, err)
	assert.Equal(t, want, n, "a refused rename leaves the target alone")

	require.NoError(t, s.DropTenantCollection(ctx, b))
	require.NoError(t, s.DropTenantCollection(ctx, b), "dropping a missing collection")
	exists, err = s.TenantCollectionExists(ctx, b)
	require.NoError(t, err)
	assert.False(t, exists)

	require.NoError(t, s.CreateTenantCollection(ctx, b, owner, created), "recreate after drop")
	n, err = s.CountTenantDocuments(ctx, b)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "a recreated collection starts with only its metadata")
}

func testUnicodeTenantCollection(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	owner := tenancy.OrgID(newID())
	for _, name := range []string{"Société Générale", "東京テック", "شركة التقنية", "Ünïcödé 2.0"} {
		id, err := tenancy.Identifier(name)
		require.NoError(t, err, name)
		coll := tenancy.TenantCollection(id)
		require.NoError(t, s.CreateTenantCollection(ctx, coll, owner, now()), coll)
		renamed := coll + "_2"
		require.NoError(t, s.RenameTenantCollection(ctx, coll, renamed), coll)
		n, err := s.CountTenantDocuments(ctx, renamed)
		require.NoError(t, err)
		assert.Equal(t, int64(1), n, renamed)
		org := sampleOrg(id)
		require.NoError(t, s.ReserveName(ctx, id, org.ID, now()), id)
		require.NoError(t, s.CreateOrg(ctx, org), id)
		got, err := s.OrgByIdentifier(ctx, id)
		require.NoError(t, err, id)
		assert.Equal(t, org.ID, got.ID)
	}
}

func testCanceledContext(t *testing.T, s tenancy.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	org := sampleOrg("canceled")
	admin := sampleAdmin("canceled@example.com")
	calls := map[string]func() error{
		"ReserveName": func() error { return s.ReserveName(ctx, "canceled", org.ID, now()) },
		"ReleaseName": func() error { return s.ReleaseName(ctx, "canceled", org.ID) },
		"CreateOrg":   func() error { return s.CreateOrg(ctx, org) },
		"OrgByID":     func() error { _, err := s.OrgByID(ctx, org.ID); return err },
		"OrgByIdentifier": func() error {
			_, err := s.OrgByIdentifier(ctx, org.Identifier)
			return err
		},
		"UpdateOrg": func() error { return s.UpdateOrg(ctx, org) },
		"DeleteOrg": func() error { return s.DeleteOrg(ctx, org.ID) },
		"LockOrg":   func() error { return s.LockOrg(ctx, org.ID, "x", now().Add(time.Minute), now()) },
		"UnlockOrg": func() error { return s.UnlockOrg(ctx, org.ID, "x") },
		"RenewLock": func() error { return s.RenewLock(ctx, org.ID, "x", now().Add(time.Minute)) },
		"PutOperation": func() error {
			return s.PutOperation(ctx, &tenancy.Operation{OrgID: org.ID, Kind: tenancy.OpCreate, Started: now()})
		},
		"DeleteOperation": func() error { return s.DeleteOperation(ctx, org.ID) },
		"Operations":      func() error { _, err := s.Operations(ctx); return err },
		"DeleteExpired":   func() error { _, err := s.DeleteExpired(ctx, now(), now()); return err },
		"UnfinishedOrgs": func() error {
			_, err := s.UnfinishedOrgs(ctx, now())
			return err
		},
		"Reservations": func() error { _, err := s.Reservations(ctx, now()); return err },
		"CreateAdmin":  func() error { return s.CreateAdmin(ctx, admin) },
		"AdminByEmail": func() error { _, err := s.AdminByEmail(ctx, admin.Email); return err },
		"AdminByID":    func() error { _, err := s.AdminByID(ctx, admin.ID); return err },
		"DeleteAdmin":  func() error { return s.DeleteAdmin(ctx, admin.ID) },
		"CreateTenantCollection": func() error {
			return s.CreateTenantCollection(ctx, org.TenantCollection, org.ID, now())
		},
		"TenantCollectionOwner": func() error {
			_, err := s.TenantCollectionOwner(ctx, org.TenantCollection)
			return err
		},
		"TenantCollectionExists": func() error {
			_, err := s.TenantCollectionExists(ctx, org.TenantCollection)
			return err
		},
		"CountTenantDocuments": func() error {
			_, err := s.CountTenantDocuments(ctx, org.TenantCollection)
			return err
		},
		"RenameTenantCollection": func() error {
			return s.RenameTenantCollection(ctx, org.TenantCollection, "tenant_elsewhere")
		},
		"DropTenantCollection": func() error { return s.DropTenantCollection(ctx, org.TenantCollection) },
	}
	for name, call := range calls {
		err := call()
		assert.ErrorIs(t, err, context.Canceled, fmt.Sprintf("%s with a canceled context", name))
	}

	live := t.Context()
	_, err := s.OrgByID(live, org.ID)
	assert.ErrorIs(t, err, tenancy.ErrNotFound, "no org written")
	_, err = s.AdminByID(live, admin.ID)
	assert.ErrorIs(t, err, tenancy.ErrNotFound, "no admin written")
	exists, err := s.TenantCollectionExists(live, org.TenantCollection)
	require.NoError(t, err)
	assert.False(t, exists, "no collection created")
	assert.NoError(t, s.ReserveName(live, "canceled", tenancy.OrgID(newID()), now()), "no name reserved")
	assert.NoError(t, s.LockOrg(live, org.ID, "y", now().Add(time.Minute), now()), "no lock taken")
	ops, err := s.Operations(live)
	require.NoError(t, err)
	assert.Empty(t, ops, "no journal entry written")
}

func testTenantDocuments(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	owner := tenancy.OrgID(newID())
	const c = "tenant_docs"
	require.NoError(t, s.CreateTenantCollection(ctx, c, owner, now()))

	var ids []string
	for i := range 5 {
		doc := &tenancy.Document{ID: newID(), Data: map[string]any{
			"n": int64(i), "name": fmt.Sprintf("doc %d", i), "tags": []any{"a", "b"},
			"nested": map[string]any{"ok": true, "none": nil, "pi": 3.5},
		}}
		require.NoError(t, s.AddTenantDocument(ctx, c, doc))
		ids = append(ids, doc.ID)
	}
	assert.ErrorIs(t, s.AddTenantDocument(ctx, c, &tenancy.Document{ID: ids[0], Data: map[string]any{}}), tenancy.ErrConflict, "same id twice")

	third := ids[2]
	slices.Sort(ids) // random ids: list in their order
	got, err := s.TenantDocument(ctx, c, third)
	require.NoError(t, err)
	assert.Equal(t, third, got.ID)
	assert.Equal(t, map[string]any{
		"n": int64(2), "name": "doc 2", "tags": []any{"a", "b"},
		"nested": map[string]any{"ok": true, "none": nil, "pi": 3.5},
	}, got.Data, "the document reads back as written")
	got.Data["name"] = "changed"
	again, err := s.TenantDocument(ctx, c, third)
	require.NoError(t, err)
	assert.Equal(t, "doc 2", again.Data["name"], "the store returns copies")

	_, err = s.TenantDocument(ctx, c, newID())
	assert.ErrorIs(t, err, tenancy.ErrNotFound, "unknown id")
	_, err = s.TenantDocument(ctx, "tenant_missing", ids[0])
	assert.ErrorIs(t, err, tenancy.ErrNotFound, "missing collection")

	page, err := s.TenantDocuments(ctx, c, "", 3)
	require.NoError(t, err)
	require.Len(t, page, 3, "the metadata document is not listed")
	assert.Equal(t, ids[:3], []string{page[0].ID, page[1].ID, page[2].ID}, "id order")
	page, err = s.TenantDocuments(ctx, c, page[2].ID, 3)
	require.NoError(t, err)
	require.Len(t, page, 2)
	assert.Equal(t, ids[3:], []string{page[0].ID, page[1].ID})
	page, err = s.TenantDocuments(ctx, c, ids[4], 3)
	require.NoError(t, err)
	assert.Empty(t, page)
	page, err = s.TenantDocuments(ctx, "tenant_missing", "", 3)
	require.NoError(t, err)
	assert.Empty(t, page, "a missing collection lists nothing")

	require.NoError(t, s.DeleteTenantDocument(ctx, c, ids[1]))
	assert.ErrorIs(t, s.DeleteTenantDocument(ctx, c, ids[1]), tenancy.ErrNotFound, "deleted twice")
	_, err = s.TenantDocument(ctx, c, ids[1])
	assert.ErrorIs(t, err, tenancy.ErrNotFound)
	n, err := s.CountTenantDocuments(ctx, c)
	require.NoError(t, err)
	assert.Equal(t, int64(5), n, "4 documents and the metadata document")
	gotOwner, err := s.TenantCollectionOwner(ctx, c)
	require.NoError(t, err)
	assert.Equal(t, owner, gotOwner, "document writes leave the owner stamp alone")

	// An insert into a missing collection creates it, as MongoDB does.
	require.NoError(t, s.AddTenantDocument(ctx, "tenant_new", &tenancy.Document{ID: newID(), Data: map[string]any{"x": "y"}}))
	exists, err := s.TenantCollectionExists(ctx, "tenant_new")
	require.NoError(t, err)
	assert.True(t, exists)
	_, err = s.TenantCollectionOwner(ctx, "tenant_new")
	assert.ErrorIs(t, err, tenancy.ErrNotFound, "a collection made by an insert has no owner stamp")
}

func testCopyTenantDocuments(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	owner := tenancy.OrgID(newID())
	const from, to = "tenant_from", "tenant_to"
	require.NoError(t, s.CreateTenantCollection(ctx, from, owner, now()))
	for i := range 30 {
		require.NoError(t, s.AddTenantDocument(ctx, from, &tenancy.Document{ID: newID(), Data: map[string]any{"n": int64(i)}}))
	}
	var reported int64
	read, err := s.CopyTenantDocuments(ctx, from, to, func(read int64) { reported = read })
	require.NoError(t, err)
	assert.Equal(t, int64(31), read, "every document read")
	assert.Equal(t, int64(31), reported, "progress reports every document read")
	n, err := s.CountTenantDocuments(ctx, to)
	require.NoError(t, err)
	assert.Equal(t, int64(31), n, "every document, metadata included")
	gotOwner, err := s.TenantCollectionOwner(ctx, to)
	require.NoError(t, err)
	assert.Equal(t, owner, gotOwner, "the owner stamp is copied")
	n, err = s.CountTenantDocuments(ctx, from)
	require.NoError(t, err)
	assert.Equal(t, int64(31), n, "the source is left as it was")

	// Running the copy again, as after an interruption, adds nothing twice.
	require.NoError(t, s.AddTenantDocument(ctx, from, &tenancy.Document{ID: newID(), Data: map[string]any{"late": true}}))
	read, err = s.CopyTenantDocuments(ctx, from, to, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(32), read)
	n, err = s.CountTenantDocuments(ctx, to)
	require.NoError(t, err)
	assert.Equal(t, int64(32), n, "a second copy adds only the missing document")

	// An empty source still makes the target.
	read, err = s.CopyTenantDocuments(ctx, "tenant_none", "tenant_empty", nil)
	require.NoError(t, err)
	assert.Zero(t, read)
	exists, err := s.TenantCollectionExists(ctx, "tenant_empty")
	require.NoError(t, err)
	assert.True(t, exists)
}
