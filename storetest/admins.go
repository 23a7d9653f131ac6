package storetest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
)

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

func testConcurrentCreateAdmin(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	errs := race(8, func(int) error { return s.CreateAdmin(ctx, sampleAdmin("race@example.com")) })
	assertOneWinner(t, errs)
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
