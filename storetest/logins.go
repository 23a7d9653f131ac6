package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
)

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
