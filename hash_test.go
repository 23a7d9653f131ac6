package tenancy_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/mongostore"
	"github.com/tenancy/tenancy/mongotest"
)

// TestCreateTakenNameNeedsNoHash creates an organization under a name an
// active one holds: the 409 comes before any bcrypt work, since names are
// public anyway (GET /org/get).
func TestCreateTakenNameNeedsNoHash(t *testing.T) {
	store := mongostore.New(mongotest.NewDatabase(t))
	require.NoError(t, store.EnsureIndexes(t.Context()))
	m := newManager(t, store)
	createAcme(t, m)
	stop := tenancy.CountPasswordHashes()
	_, err := m.CreateOrg(t.Context(), tenancy.CreateOrgParams{Name: "ACME corporation", AdminEmail: "other@acme.com", AdminPassword: "MySecurePassword123"})
	hashes := stop()
	require.ErrorIs(t, err, tenancy.ErrConflict)
	var cerr *tenancy.ConflictError
	require.ErrorAs(t, err, &cerr)
	assert.Equal(t, "organization_name", cerr.Field)
	assert.Zero(t, hashes, "no bcrypt for a name already taken")
}

// TestSignUpBurstQueues sends six creates of one name at once to a
// Manager with one bcrypt slot whose every hash takes 600 ms: they queue
// instead of being shed, so exactly one creates the organization and the
// others get their conflict, none ErrOverloaded.
func TestSignUpBurstQueues(t *testing.T) {
	store := mongostore.New(mongotest.NewDatabase(t))
	require.NoError(t, store.EnsureIndexes(t.Context()))
	m, err := tenancy.New(store, tenancy.WithSigningSecret(testSecret), tenancy.WithHashConcurrency(1))
	require.NoError(t, err)
	defer tenancy.SlowPasswordHashes(600 * time.Millisecond)()
	var mu sync.Mutex
	outcomes := map[string]int{}
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			_, err := m.CreateOrg(t.Context(), tenancy.CreateOrgParams{Name: "Burst Corp",
				AdminEmail: fmt.Sprintf("admin%d@burst.test", i), AdminPassword: "MySecurePassword123"})
			outcome := "created"
			switch {
			case errors.Is(err, tenancy.ErrConflict):
				outcome = "conflict"
			case err != nil:
				outcome = err.Error()
			}
			mu.Lock()
			outcomes[outcome]++
			mu.Unlock()
		})
	}
	wg.Wait()
	assert.Equal(t, map[string]int{"created": 1, "conflict": 5}, outcomes)
}
