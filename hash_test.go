package tenancy_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/memstore"
	"github.com/tenancy/tenancy/mongotest"
)

// TestCreateTakenNameNeedsNoHash creates an organization under a name an
// active one holds: the 409 comes before any bcrypt work, since names are
// public anyway (GET /org/get).
func TestCreateTakenNameNeedsNoHash(t *testing.T) {
	store := newStore(t, mongotest.NewDatabase(t))
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
	store := newStore(t, mongotest.NewDatabase(t))
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

// TestIDsRevealNothing creates organizations one after another: neither
// an admin's id nor the next organization's can be derived from an
// organization's id (they used to be adjacent: org + 1, then + 2).
func TestIDsRevealNothing(t *testing.T) {
	m := newManager(t, memstore.New())
	var prev *tenancy.Org
	for i := range 20 {
		org, err := m.CreateOrg(t.Context(), tenancy.CreateOrgParams{Name: fmt.Sprintf("Org %d", i),
			AdminEmail: fmt.Sprintf("admin%d@ids.test", i), AdminPassword: "MySecurePassword123"})
		require.NoError(t, err)
		assert.Greater(t, distance(t, string(org.ID), string(org.AdminID)), uint64(1<<32), "admin id from org id")
		if prev != nil {
			assert.Greater(t, distance(t, string(prev.ID), string(org.ID)), uint64(1<<32), "next org id from this one")
			assert.Greater(t, distance(t, string(prev.AdminID), string(org.AdminID)), uint64(1<<32), "next admin id from this one")
		}
		prev = org
	}
}

// distance is how far apart the low 8 bytes of two ObjectIDs are.
func distance(t *testing.T, a, b string) uint64 {
	t.Helper()
	x, err := strconv.ParseUint(a[8:], 16, 64)
	require.NoError(t, err)
	y, err := strconv.ParseUint(b[8:], 16, 64)
	require.NoError(t, err)
	if x > y {
		return x - y
	}
	return y - x
}

// TestSigningSecretQuality refuses the .env.example placeholder, secrets
// of one repeated byte or too few distinct ones, and accepts random ones.
func TestSigningSecretQuality(t *testing.T) {
	for _, bad := range []string{
		"your-very-secure-secret-key-change-in-production",
		strings.Repeat("a", 32),
		strings.Repeat("ab", 24),
		"Please-Replace-Me-With-A-Real-Secret-Value",
		"short",
	} {
		_, err := tenancy.New(memstore.New(), tenancy.WithSigningSecret([]byte(bad)))
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "openssl rand -base64 48", bad)
		_, err = tenancy.New(memstore.New(), tenancy.WithSigningSecret(testSecret), tenancy.WithPreviousSigningSecrets([]byte(bad)))
		require.Error(t, err, "previous %s", bad)
	}
	random := make([]byte, 48)
	_, _ = rand.Read(random)
	for _, good := range [][]byte{random, []byte(base64.StdEncoding.EncodeToString(random)), []byte(hex.EncodeToString(random[:16]))} {
		assert.NoError(t, tenancy.CheckSigningSecret(good), "%q", good)
	}
}
