package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
)

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
