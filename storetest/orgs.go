package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
)

func testCreateAndGetOrg(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	org := sampleOrg("acme-corporation")
	createNamed(t, s, org)

	got, err := s.OrgByID(ctx, org.ID)
	require.NoError(t, err)
	assertOrgEqual(t, org, got)

	got, err = s.OrgByIdentifier(ctx, org.Identifier)
	require.NoError(t, err)
	assertOrgEqual(t, org, got)
}

func testDuplicateOrg(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	org := sampleOrg("acme")
	require.NoError(t, s.CreateOrg(ctx, org))

	sameID := sampleOrg("other")
	sameID.ID = org.ID
	assert.ErrorIs(t, s.CreateOrg(ctx, sameID), tenancy.ErrConflict, "same id")

	sameIdentifier := sampleOrg("acme")
	assert.ErrorIs(t, s.CreateOrg(ctx, sameIdentifier), tenancy.ErrConflict, "same identifier")
	_, err := s.OrgByID(ctx, sameIdentifier.ID)
	assert.ErrorIs(t, err, tenancy.ErrNotFound, "a refused org must not be stored")
}

func testMissingRecords(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	org := sampleOrg("ghost")
	checks := map[string]error{}
	_, checks["OrgByID"] = s.OrgByID(ctx, org.ID)
	_, checks["OrgByIdentifier"] = s.OrgByIdentifier(ctx, org.Identifier)
	checks["UpdateOrg"] = s.UpdateOrg(ctx, org)
	checks["DeleteOrg"] = s.DeleteOrg(ctx, org.ID)
	_, checks["AdminByEmail"] = s.AdminByEmail(ctx, "nobody@example.com")
	_, checks["AdminByID"] = s.AdminByID(ctx, org.AdminID)
	checks["DeleteAdmin"] = s.DeleteAdmin(ctx, org.AdminID)
	checks["RenameTenantCollection"] = s.RenameTenantCollection(ctx, "tenant_ghost", "tenant_ghost_2")
	for name, err := range checks {
		assert.ErrorIs(t, err, tenancy.ErrNotFound, name)
	}
	// Ids that cannot exist in a store are missing records, not failures.
	_, err := s.OrgByID(ctx, "not-an-id")
	assert.ErrorIs(t, err, tenancy.ErrNotFound, "OrgByID with a malformed id")
	_, err = s.AdminByID(ctx, "not-an-id")
	assert.ErrorIs(t, err, tenancy.ErrNotFound, "AdminByID with a malformed id")
}

func testUpdateOrg(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	org := sampleOrg("before")
	createNamed(t, s, org)
	require.NoError(t, s.ReserveName(ctx, "after", org.ID, now()))

	org.Name = "After"
	org.Identifier = "after"
	org.TenantCollection = tenancy.TenantCollection("after")
	org.State = tenancy.OrgRenaming
	org.PendingName, org.PendingIdentifier, org.PendingCollection = "Later", "later", "tenant_later"
	org.ModifiedAt = now().Add(time.Second)
	require.NoError(t, s.UpdateOrg(ctx, org))
	assert.Equal(t, int64(1), org.Version, "UpdateOrg increments Version")

	got, err := s.OrgByID(ctx, org.ID)
	require.NoError(t, err)
	assertOrgEqual(t, org, got)
	got, err = s.OrgByIdentifier(ctx, "after")
	require.NoError(t, err)
	assert.Equal(t, org.ID, got.ID)
	_, err = s.OrgByIdentifier(ctx, "before")
	assert.ErrorIs(t, err, tenancy.ErrNotFound, "old identifier")

	require.NoError(t, s.UpdateOrg(ctx, org))
	assert.Equal(t, int64(2), org.Version)
}

func testStaleUpdate(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	org := sampleOrg("stale")
	require.NoError(t, s.CreateOrg(ctx, org))

	first, err := s.OrgByID(ctx, org.ID)
	require.NoError(t, err)
	second, err := s.OrgByID(ctx, org.ID)
	require.NoError(t, err)

	first.Name = "First"
	require.NoError(t, s.UpdateOrg(ctx, first))
	second.Name = "Second"
	assert.ErrorIs(t, s.UpdateOrg(ctx, second), tenancy.ErrConflict)
	assert.Equal(t, int64(0), second.Version, "a refused update leaves Version alone")

	got, err := s.OrgByID(ctx, org.ID)
	require.NoError(t, err)
	assert.Equal(t, "First", got.Name)
	assert.Equal(t, int64(1), got.Version)
}

func testDeleteOrg(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	org := sampleOrg("doomed")
	keep := sampleOrg("kept")
	createNamed(t, s, org)
	createNamed(t, s, keep)

	require.NoError(t, s.DeleteOrg(ctx, org.ID))
	_, err := s.OrgByID(ctx, org.ID)
	assert.ErrorIs(t, err, tenancy.ErrNotFound)
	_, err = s.OrgByIdentifier(ctx, org.Identifier)
	assert.ErrorIs(t, err, tenancy.ErrNotFound)
	assert.ErrorIs(t, s.DeleteOrg(ctx, org.ID), tenancy.ErrNotFound, "second delete")

	_, err = s.OrgByID(ctx, keep.ID)
	assert.NoError(t, err, "other orgs are untouched")
	// The identifier is free again.
	assert.NoError(t, s.CreateOrg(ctx, sampleOrg("doomed")))
}

func testReturnsCopies(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	org := sampleOrg("copies")
	createNamed(t, s, org)
	org.Name = "changed after create"

	got, err := s.OrgByID(ctx, org.ID)
	require.NoError(t, err)
	assert.Equal(t, "Org copies", got.Name, "the store kept the caller's pointer")
	got.Name = "changed after read"
	again, err := s.OrgByIdentifier(ctx, "copies")
	require.NoError(t, err)
	assert.Equal(t, "Org copies", again.Name, "the store returned its own pointer")

	admin := sampleAdmin("copy@example.com")
	require.NoError(t, s.CreateAdmin(ctx, admin))
	admin.PasswordHash[0] = 'X'
	a, err := s.AdminByID(ctx, admin.ID)
	require.NoError(t, err)
	assert.Equal(t, byte('$'), a.PasswordHash[0], "the store kept the caller's hash slice")
	a.PasswordHash[0] = 'Y'
	b, err := s.AdminByEmail(ctx, admin.Email)
	require.NoError(t, err)
	assert.Equal(t, byte('$'), b.PasswordHash[0], "the store returned its own hash slice")
}

func testNames(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	a, b := tenancy.OrgID(newID()), tenancy.OrgID(newID())

	require.NoError(t, s.ReserveName(ctx, "shared", a, now()))
	assert.NoError(t, s.ReserveName(ctx, "shared", a, now()), "reserving again for the same org")
	assert.ErrorIs(t, s.ReserveName(ctx, "shared", b, now()), tenancy.ErrConflict, "another org")

	assert.NoError(t, s.ReleaseName(ctx, "shared", b), "releasing someone else's name is a no-op")
	assert.ErrorIs(t, s.ReserveName(ctx, "shared", b, now()), tenancy.ErrConflict, "still held after a foreign release")

	require.NoError(t, s.ReleaseName(ctx, "shared", a))
	assert.NoError(t, s.ReleaseName(ctx, "shared", a), "releasing a free name")
	assert.NoError(t, s.ReserveName(ctx, "shared", b, now()), "free after release")
}

func testConcurrentReserveName(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	errs := race(8, func(int) error { return s.ReserveName(ctx, "contested", tenancy.OrgID(newID()), now()) })
	assertOneWinner(t, errs)
}

func testConcurrentCreateOrg(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	orgs := make([]*tenancy.Org, 8)
	for i := range orgs {
		orgs[i] = sampleOrg("contested")
	}
	errs := race(8, func(i int) error { return s.CreateOrg(ctx, orgs[i]) })
	assertOneWinner(t, errs)
	for i, err := range errs {
		if err == nil {
			require.NoError(t, s.ReserveName(ctx, "contested", orgs[i].ID, now()))
			got, err := s.OrgByIdentifier(ctx, "contested")
			require.NoError(t, err)
			assert.Equal(t, orgs[i].ID, got.ID, "the winner is stored")
		}
	}
}

func testReservations(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	t0 := now()
	a, b := tenancy.OrgID(newID()), tenancy.OrgID(newID())
	require.NoError(t, s.ReserveName(ctx, "old-name", a, t0.Add(-time.Hour)))
	require.NoError(t, s.ReserveName(ctx, "new-name", b, t0))

	got, err := s.Reservations(ctx, t0.Add(-time.Minute))
	require.NoError(t, err)
	require.Len(t, got, 1, "only names reserved before the cut")
	assert.Equal(t, "old-name", got[0].Identifier)
	assert.Equal(t, a, got[0].OrgID)
	assert.True(t, t0.Add(-time.Hour).Equal(got[0].ReservedAt))

	got, err = s.Reservations(ctx, t0.Add(time.Minute))
	require.NoError(t, err)
	assert.Len(t, got, 2)
}

func testUnfinishedOrgs(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	t0 := now()
	var want []tenancy.OrgID
	for i, state := range []tenancy.OrgState{tenancy.OrgActive, tenancy.OrgCreating, tenancy.OrgRenaming, tenancy.OrgDeleting} {
		org := sampleOrg(fmt.Sprintf("org-%d", i))
		org.State = state
		org.ModifiedAt = t0.Add(-time.Hour)
		require.NoError(t, s.CreateOrg(ctx, org))
		if state != tenancy.OrgActive {
			want = append(want, org.ID)
		}
	}
	recent := sampleOrg("recent")
	recent.State = tenancy.OrgCreating
	require.NoError(t, s.CreateOrg(ctx, recent))

	got, err := s.UnfinishedOrgs(ctx, t0.Add(-time.Minute))
	require.NoError(t, err)
	var ids []tenancy.OrgID
	for _, o := range got {
		ids = append(ids, o.ID)
	}
	assert.ElementsMatch(t, want, ids, "orgs not active and not modified since the cut")
}
