// Package storetest is the conformance suite every tenancy.Store must pass.
// A store's tests call Run with a constructor of fresh, empty stores:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) tenancy.Store { return memstore.New() })
//	}
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
)

// TenantWriter is implemented by stores that can add a document to a
// tenant collection. When the store under test implements it, the suite
// also checks that renaming a collection keeps every document.
type TenantWriter interface {
	InsertTenantDocument(ctx context.Context, collection string, doc map[string]any) error
}

// Run runs the conformance suite. newStore must return an empty store that
// no other test uses.
func Run(t *testing.T, newStore func(t *testing.T) tenancy.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s tenancy.Store)
	}{
		{"CreateAndGetOrg", testCreateAndGetOrg},
		{"DuplicateOrg", testDuplicateOrg},
		{"MissingRecords", testMissingRecords},
		{"UpdateOrg", testUpdateOrg},
		{"StaleUpdate", testStaleUpdate},
		{"DeleteOrg", testDeleteOrg},
		{"AdminByEmail", testAdminByEmail},
		{"DuplicateAdmin", testDuplicateAdmin},
		{"ReturnsCopies", testReturnsCopies},
		{"Names", testNames},
		{"ConcurrentReserveName", testConcurrentReserveName},
		{"ConcurrentCreateOrg", testConcurrentCreateOrg},
		{"Reservations", testReservations},
		{"UnfinishedOrgs", testUnfinishedOrgs},
		{"Locks", testLocks},
		{"ConcurrentLockOrg", testConcurrentLockOrg},
		{"RenewLock", testRenewLock},
		{"ManyLockCycles", testManyLockCycles},
		{"Journal", testJournal},
		{"DeleteExpired", testDeleteExpired},
		{"ConcurrentCreateAdmin", testConcurrentCreateAdmin},
		{"TenantCollections", testTenantCollections},
		{"UnicodeTenantCollection", testUnicodeTenantCollection},
		{"TenantDocuments", testTenantDocuments},
		{"CopyTenantDocuments", testCopyTenantDocuments},
		{"LoginFailures", testLoginFailures},
		{"SetAdminPassword", testSetAdminPassword},
		{"RevokeToken", testRevokeToken},
		{"CanceledContext", testCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t))
		})
	}
}

// newID returns a fresh id in the ObjectID text form every store accepts.
func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// now returns the current time at the millisecond precision stores keep.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

func sampleOrg(identifier string) *tenancy.Org {
	t := now()
	return &tenancy.Org{
		ID:               tenancy.OrgID(newID()),
		Name:             "Org " + identifier,
		Identifier:       identifier,
		TenantCollection: tenancy.TenantCollection(identifier),
		AdminID:          tenancy.AdminID(newID()),
		AdminEmail:       "admin@" + identifier + ".example",
		State:            tenancy.OrgActive,
		CreatedAt:        t,
		ModifiedAt:       t,
	}
}

func sampleAdmin(email string) *tenancy.Admin {
	return &tenancy.Admin{
		ID:           tenancy.AdminID(newID()),
		Email:        email,
		PasswordHash: []byte("$2a$10$abcdefghijklmnopqrstuu5Qx9m1n0cP8o4fE2B3bq6kJ9nVxYzW"),
		OrgID:        tenancy.OrgID(newID()),
		CreatedAt:    now(),
	}
}

func assertOrgEqual(t *testing.T, want, got *tenancy.Org) {
	t.Helper()
	assert.Equal(t, want.ID, got.ID)
	assert.Equal(t, want.Name, got.Name)
	assert.Equal(t, want.Identifier, got.Identifier)
	assert.Equal(t, want.TenantCollection, got.TenantCollection)
	assert.Equal(t, want.AdminID, got.AdminID)
	assert.Equal(t, want.AdminEmail, got.AdminEmail)
	assert.Equal(t, want.State, got.State)
	assert.Equal(t, want.PendingName, got.PendingName)
	assert.Equal(t, want.PendingIdentifier, got.PendingIdentifier)
	assert.Equal(t, want.PendingCollection, got.PendingCollection)
	assert.True(t, want.CreatedAt.Equal(got.CreatedAt), "CreatedAt: want %v, got %v", want.CreatedAt, got.CreatedAt)
	assert.True(t, want.ModifiedAt.Equal(got.ModifiedAt), "ModifiedAt: want %v, got %v", want.ModifiedAt, got.ModifiedAt)
	assert.Equal(t, want.Version, got.Version)
}

// createNamed creates org holding its name, as the Manager always does
// (OrgByIdentifier may find an org through its name's reservation).
func createNamed(t *testing.T, s tenancy.Store, org *tenancy.Org) {
	t.Helper()
	require.NoError(t, s.ReserveName(t.Context(), org.Identifier, org.ID, now()))
	require.NoError(t, s.CreateOrg(t.Context(), org))
}

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

func testAdminByEmail(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	admin := sampleAdmin("admin@acme.com")
	require.NoError(t, s.CreateAdmin(ctx, admin))

	for _, email := range []string{"admin@acme.com", "Admin@ACME.com"} {
		got, err := s.AdminByEmail(ctx, email)
		require.NoError(t, err, email)
		assert.Equal(t, admin.ID, got.ID)
		assert.Equal(t, "admin@acme.com", got.Email)
		assert.Equal(t, admin.PasswordHash, got.PasswordHash)
		assert.Equal(t, admin.OrgID, got.OrgID)
		assert.True(t, admin.CreatedAt.Equal(got.CreatedAt))
	}
	got, err := s.AdminByID(ctx, admin.ID)
	require.NoError(t, err)
	assert.Equal(t, admin.Email, got.Email)

	require.NoError(t, s.DeleteAdmin(ctx, admin.ID))
	_, err = s.AdminByEmail(ctx, admin.Email)
	assert.ErrorIs(t, err, tenancy.ErrNotFound)
}

func testDuplicateAdmin(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	admin := sampleAdmin("dup@example.com")
	require.NoError(t, s.CreateAdmin(ctx, admin))

	assert.ErrorIs(t, s.CreateAdmin(ctx, sampleAdmin("DUP@example.com")), tenancy.ErrConflict, "same email, other case")
	sameID := sampleAdmin("other@example.com")
	sameID.ID = admin.ID
	assert.ErrorIs(t, s.CreateAdmin(ctx, sameID), tenancy.ErrConflict, "same id")
	_, err := s.AdminByEmail(ctx, "other@example.com")
	assert.ErrorIs(t, err, tenancy.ErrNotFound, "a refused admin must not be stored")
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

// race runs fn concurrently n times and returns the errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func assertOneWinner(t *testing.T, errs []error) {
	t.Helper()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
		} else {
			assert.ErrorIs(t, err, tenancy.ErrConflict)
		}
	}
	assert.Equal(t, 1, wins, "exactly one of %d concurrent calls must win", len(errs))
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

func testLocks(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	org, other := tenancy.OrgID(newID()), tenancy.OrgID(newID())
	t0 := now()
	require.NoError(t, s.LockOrg(ctx, org, "a", t0.Add(time.Minute), t0))
	assert.ErrorIs(t, s.LockOrg(ctx, org, "b", t0.Add(time.Minute), t0), tenancy.ErrConflict, "held")
	assert.ErrorIs(t, s.LockOrg(ctx, org, "a", t0.Add(time.Minute), t0), tenancy.ErrConflict, "not re-entrant")
	assert.NoError(t, s.LockOrg(ctx, other, "b", t0.Add(time.Minute), t0), "other orgs are independent")

	assert.NoError(t, s.UnlockOrg(ctx, org, "b"), "unlocking someone else's lock is a no-op")
	assert.ErrorIs(t, s.LockOrg(ctx, org, "b", t0.Add(time.Minute), t0), tenancy.ErrConflict, "still held")
	require.NoError(t, s.UnlockOrg(ctx, org, "a"))
	assert.NoError(t, s.UnlockOrg(ctx, org, "a"), "unlocking a free org")
	require.NoError(t, s.LockOrg(ctx, org, "b", t0.Add(time.Minute), t0), "free after unlock")

	later := t0.Add(2 * time.Minute)
	require.NoError(t, s.LockOrg(ctx, org, "c", later.Add(time.Minute), later), "an expired lock is taken over")
	assert.NoError(t, s.UnlockOrg(ctx, org, "b"), "the expired owner's unlock is a no-op")
	assert.ErrorIs(t, s.LockOrg(ctx, org, "d", later.Add(time.Minute), later), tenancy.ErrConflict, "the new owner holds it")
}

func testConcurrentLockOrg(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	org := tenancy.OrgID(newID())
	t0 := now()
	errs := race(8, func(i int) error { return s.LockOrg(ctx, org, fmt.Sprint(i), t0.Add(time.Minute), t0) })
	assertOneWinner(t, errs)

	later := t0.Add(2 * time.Minute)
	errs = race(8, func(i int) error { return s.LockOrg(ctx, org, fmt.Sprint("late", i), later.Add(time.Minute), later) })
	assertOneWinner(t, errs)
}

func testRenewLock(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	org := tenancy.OrgID(newID())
	t0 := now()
	assert.ErrorIs(t, s.RenewLock(ctx, org, "a", t0.Add(time.Minute)), tenancy.ErrConflict, "a lock never taken")
	require.NoError(t, s.LockOrg(ctx, org, "a", t0.Add(time.Minute), t0))
	assert.ErrorIs(t, s.RenewLock(ctx, org, "b", t0.Add(time.Hour)), tenancy.ErrConflict, "another owner's lock")

	// Renewed, the lock holds past its first expiry.
	require.NoError(t, s.RenewLock(ctx, org, "a", t0.Add(3*time.Minute)))
	later := t0.Add(2 * time.Minute)
	assert.ErrorIs(t, s.LockOrg(ctx, org, "b", later.Add(time.Minute), later), tenancy.ErrConflict, "renewed")

	// Taken over once expired: the old owner's renewal then fails.
	muchLater := t0.Add(4 * time.Minute)
	require.NoError(t, s.LockOrg(ctx, org, "b", muchLater.Add(time.Minute), muchLater))
	assert.ErrorIs(t, s.RenewLock(ctx, org, "a", muchLater.Add(time.Hour)), tenancy.ErrConflict, "taken over")
	require.NoError(t, s.RenewLock(ctx, org, "b", muchLater.Add(2*time.Minute)))
	require.NoError(t, s.UnlockOrg(ctx, org, "b"))
	assert.ErrorIs(t, s.RenewLock(ctx, org, "b", muchLater.Add(3*time.Minute)), tenancy.ErrConflict, "released")
}

// testManyLockCycles takes and releases one org's lock many times, and
// races takers at each step, so that lock numbers, pruning and markers
// keep working past the first few.
func testManyLockCycles(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	org := tenancy.OrgID(newID())
	t0 := now()
	for i := range 12 {
		errs := race(4, func(j int) error { return s.LockOrg(ctx, org, fmt.Sprint(i, "/", j), t0.Add(time.Minute), t0) })
		assertOneWinner(t, errs)
		for j, err := range errs {
			if err == nil {
				require.NoError(t, s.UnlockOrg(ctx, org, fmt.Sprint(i, "/", j)))
			}
		}
	}
}

func testJournal(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	ops, err := s.Operations(ctx)
	require.NoError(t, err)
	assert.Empty(t, ops, "a new journal is empty")

	a, b := tenancy.OrgID(newID()), tenancy.OrgID(newID())
	at := now()
	require.NoError(t, s.PutOperation(ctx, &tenancy.Operation{OrgID: a, Kind: tenancy.OpCreate, Names: []string{"acme"}, Started: at}))
	require.NoError(t, s.PutOperation(ctx, &tenancy.Operation{OrgID: b, Kind: tenancy.OpDelete, Names: []string{"globex"}, Started: at}))
	require.NoError(t, s.PutOperation(ctx, &tenancy.Operation{OrgID: a, Kind: tenancy.OpRename, Names: []string{"acme-2", "acme"}, Started: at.Add(time.Second)}))
	ops, err = s.Operations(ctx)
	require.NoError(t, err)
	require.Len(t, ops, 2, "one entry per organization")
	byOrg := map[tenancy.OrgID]*tenancy.Operation{}
	for _, op := range ops {
		byOrg[op.OrgID] = op
	}
	require.Contains(t, byOrg, a)
	assert.Equal(t, tenancy.OpRename, byOrg[a].Kind, "replaced")
	assert.Equal(t, []string{"acme-2", "acme"}, byOrg[a].Names)
	assert.True(t, byOrg[a].Started.Equal(at.Add(time.Second)), "started %v", byOrg[a].Started)
	require.Contains(t, byOrg, b)
	assert.Equal(t, tenancy.OpDelete, byOrg[b].Kind)

	require.NoError(t, s.DeleteOperation(ctx, a))
	require.NoError(t, s.DeleteOperation(ctx, a), "removing a missing entry")
	ops, err = s.Operations(ctx)
	require.NoError(t, err)
	require.Len(t, ops, 1)
	assert.Equal(t, b, ops[0].OrgID)
}

func testDeleteExpired(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	t0 := now()
	require.NoError(t, s.RevokeToken(ctx, "old", t0.Add(-time.Minute)))
	require.NoError(t, s.RevokeToken(ctx, "live", t0.Add(time.Hour)))
	require.NoError(t, s.RecordLoginFailure(ctx, "stale@example.com", false, t0.Add(-48*time.Hour)))
	require.NoError(t, s.RecordLoginFailure(ctx, "fresh@example.com", false, t0))
	n, err := s.DeleteExpired(ctx, t0, t0.Add(-24*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, int64(2), n, "the expired revocation and the stale failures")
	revoked, err := s.TokenRevoked(ctx, "live")
	require.NoError(t, err)
	assert.True(t, revoked, "a live revocation is kept")
	revoked, err = s.TokenRevoked(ctx, "old")
	require.NoError(t, err)
	assert.False(t, revoked, "an expired revocation is gone")
	c, _, err := s.LoginFailures(ctx, "fresh@example.com")
	require.NoError(t, err)
	assert.Equal(t, 1, c, "recent failures are kept")
	c, _, err = s.LoginFailures(ctx, "stale@example.com")
	require.NoError(t, err)
	assert.Zero(t, c, "stale failures are gone")
}

func testConcurrentCreateAdmin(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	errs := race(8, func(int) error { return s.CreateAdmin(ctx, sampleAdmin("race@example.com")) })
	assertOneWinner(t, errs)
}

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
	if w, ok := s.(TenantWriter); ok {
		for i := range 25 {
			require.NoError(t, w.InsertTenantDocument(ctx, a, map[string]any{"n": i}))
		}
		want += 25
	}

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

func testLoginFailures(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	admin := &tenancy.Admin{ID: tenancy.AdminID(newID()), Email: "known@example.com", PasswordHash: []byte("h"), OrgID: tenancy.OrgID(newID()), CreatedAt: now()}
	require.NoError(t, s.CreateAdmin(ctx, admin))
	t1 := now()
	t2 := t1.Add(time.Second)
	for _, at := range []time.Time{t1, t2} {
		require.NoError(t, s.RecordLoginFailure(ctx, "known@example.com", true, at))
		require.NoError(t, s.RecordLoginFailure(ctx, "unknown@example.com", false, at))
	}
	got, err := s.AdminByEmail(ctx, "known@example.com")
	require.NoError(t, err)
	assert.Equal(t, 2, got.FailedLogins, "counted on the admin account")
	assert.True(t, got.LastFailedLogin.Equal(t2), "last failure %v", got.LastFailedLogin)
	n, last, err := s.LoginFailures(ctx, "unknown@example.com")
	require.NoError(t, err)
	assert.Equal(t, 2, n, "counted for an address without an account")
	assert.True(t, last.Equal(t2))
	n, _, err = s.LoginFailures(ctx, "never@example.com")
	require.NoError(t, err)
	assert.Zero(t, n)

	// A claim counts only against the last failure it read.
	t3 := t2.Add(time.Second)
	for _, c := range []struct {
		email string
		known bool
	}{{"known@example.com", true}, {"unknown@example.com", false}} {
		ok, err := s.ClaimLoginAttempt(ctx, c.email, c.known, t1, t3)
		require.NoError(t, err)
		assert.False(t, ok, "%s: a stale last failure", c.email)
		ok, err = s.ClaimLoginAttempt(ctx, c.email, c.known, t2, t3)
		require.NoError(t, err)
		assert.True(t, ok, "%s: the current last failure", c.email)
		ok, err = s.ClaimLoginAttempt(ctx, c.email, c.known, t2, t3)
		require.NoError(t, err)
		assert.False(t, ok, "%s: claimed once", c.email)
	}
	got, err = s.AdminByEmail(ctx, "known@example.com")
	require.NoError(t, err)
	assert.Equal(t, 3, got.FailedLogins)
	assert.True(t, got.LastFailedLogin.Equal(t3))
	n, _, err = s.LoginFailures(ctx, "unknown@example.com")
	require.NoError(t, err)
	assert.Equal(t, 3, n)

	require.NoError(t, s.ResetLoginFailures(ctx, "known@example.com"))
	require.NoError(t, s.ResetLoginFailures(ctx, "unknown@example.com"))
	got, err = s.AdminByEmail(ctx, "known@example.com")
	require.NoError(t, err)
	assert.Zero(t, got.FailedLogins)
	assert.True(t, got.LastFailedLogin.IsZero())
	n, _, err = s.LoginFailures(ctx, "unknown@example.com")
	require.NoError(t, err)
	assert.Zero(t, n)
}

func testSetAdminPassword(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	admin := &tenancy.Admin{ID: tenancy.AdminID(newID()), Email: "a@example.com", PasswordHash: []byte("old"), OrgID: tenancy.OrgID(newID()), CreatedAt: now()}
	require.NoError(t, s.CreateAdmin(ctx, admin))
	gen, err := s.SetAdminPassword(ctx, admin.ID, []byte("new"))
	require.NoError(t, err)
	assert.Equal(t, int64(1), gen)
	gen, err = s.SetAdminPassword(ctx, admin.ID, []byte("newer"))
	require.NoError(t, err)
	assert.Equal(t, int64(2), gen, "each change is a new generation")
	got, err := s.AdminByID(ctx, admin.ID)
	require.NoError(t, err)
	assert.Equal(t, []byte("newer"), got.PasswordHash)
	assert.Equal(t, int64(2), got.TokenGeneration)
	_, err = s.SetAdminPassword(ctx, tenancy.AdminID(newID()), []byte("x"))
	assert.ErrorIs(t, err, tenancy.ErrNotFound)
}

func testRevokeToken(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	jti := newID()
	revoked, err := s.TokenRevoked(ctx, jti)
	require.NoError(t, err)
	assert.False(t, revoked)
	require.NoError(t, s.RevokeToken(ctx, jti, now().Add(time.Hour)))
	require.NoError(t, s.RevokeToken(ctx, jti, now().Add(time.Hour)), "revoking twice")
	revoked, err = s.TokenRevoked(ctx, jti)
	require.NoError(t, err)
	assert.True(t, revoked)
	revoked, err = s.TokenRevoked(ctx, newID())
	require.NoError(t, err)
	assert.False(t, revoked, "only that token")
}
