package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
)

func sampleMembership(org tenancy.OrgID, admin *tenancy.Admin, role tenancy.Role, joined time.Time) *tenancy.Membership {
	return &tenancy.Membership{OrgID: org, AdminID: admin.ID, Email: admin.Email, Role: role, JoinedAt: joined}
}

func testMemberships(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	admin := sampleAdmin("member@acme.com")
	require.NoError(t, s.CreateAdmin(ctx, admin))
	home, other := admin.OrgID, tenancy.OrgID(newID())
	joined := now()
	require.NoError(t, s.AddMembership(ctx, sampleMembership(other, admin, tenancy.RoleAdmin, joined.Add(time.Second))))
	require.NoError(t, s.AddMembership(ctx, sampleMembership(home, admin, tenancy.RoleOwner, joined)))
	assert.ErrorIs(t, s.AddMembership(ctx, sampleMembership(home, admin, tenancy.RoleMember, joined)), tenancy.ErrConflict, "a member once")

	got, err := s.Membership(ctx, home, admin.ID)
	require.NoError(t, err)
	assert.Equal(t, tenancy.RoleOwner, got.Role)
	assert.Equal(t, "member@acme.com", got.Email)
	assert.True(t, joined.Equal(got.JoinedAt))
	_, err = s.Membership(ctx, tenancy.OrgID(newID()), admin.ID)
	assert.ErrorIs(t, err, tenancy.ErrNotFound)

	all, err := s.AdminMemberships(ctx, admin.ID)
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, home, all[0].OrgID, "oldest first")
	assert.Equal(t, other, all[1].OrgID)

	require.NoError(t, s.SetMemberRole(ctx, other, admin.ID, tenancy.RoleMember))
	got, err = s.Membership(ctx, other, admin.ID)
	require.NoError(t, err)
	assert.Equal(t, tenancy.RoleMember, got.Role)
	assert.ErrorIs(t, s.SetMemberRole(ctx, tenancy.OrgID(newID()), admin.ID, tenancy.RoleMember), tenancy.ErrNotFound)

	require.NoError(t, s.DeleteMembership(ctx, other, admin.ID))
	assert.ErrorIs(t, s.DeleteMembership(ctx, other, admin.ID), tenancy.ErrNotFound)
	all, err = s.AdminMemberships(ctx, admin.ID)
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, home, all[0].OrgID)

	require.NoError(t, s.SetAdminHome(ctx, admin.ID, other))
	a, err := s.AdminByID(ctx, admin.ID)
	require.NoError(t, err)
	assert.Equal(t, other, a.OrgID)
	assert.ErrorIs(t, s.SetAdminHome(ctx, tenancy.AdminID(newID()), other), tenancy.ErrNotFound)
}

func testOrgMembers(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	org := tenancy.OrgID(newID())
	var ids []tenancy.AdminID
	for i := range 5 {
		a := sampleAdmin(newID() + "@acme.com")
		require.NoError(t, s.CreateAdmin(ctx, a))
		require.NoError(t, s.AddMembership(ctx, sampleMembership(org, a, tenancy.RoleMember, now().Add(time.Duration(-i)*time.Second))))
		ids = append(ids, a.ID)
	}
	// Another organization's member is not listed.
	stranger := sampleAdmin("stranger@acme.com")
	require.NoError(t, s.CreateAdmin(ctx, stranger))
	require.NoError(t, s.AddMembership(ctx, sampleMembership(stranger.OrgID, stranger, tenancy.RoleOwner, now())))

	var got []tenancy.AdminID
	var after tenancy.AdminID
	for {
		page, err := s.OrgMembers(ctx, org, after, 2)
		require.NoError(t, err)
		for _, mb := range page {
			assert.Equal(t, org, mb.OrgID)
			got = append(got, mb.AdminID)
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].AdminID
	}
	assert.ElementsMatch(t, ids, got)
	assert.IsIncreasing(t, got, "in admin id order")
}

func testConcurrentAddMembership(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	admin := sampleAdmin("race@acme.com")
	require.NoError(t, s.CreateAdmin(ctx, admin))
	errs := race(8, func(int) error {
		return s.AddMembership(ctx, sampleMembership(admin.OrgID, admin, tenancy.RoleMember, now()))
	})
	assertOneWinner(t, errs)
}

func sampleInvitation(org tenancy.OrgID, email string) *tenancy.Invitation {
	at := now()
	return &tenancy.Invitation{
		ID: newID(), OrgID: org, Email: email, Role: tenancy.RoleAdmin, TokenHash: []byte{1, 2, 3},
		InvitedBy: tenancy.AdminID(newID()), CreatedAt: at, ExpiresAt: at.Add(time.Hour),
	}
}

func testInvitations(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	org := tenancy.OrgID(newID())
	inv := sampleInvitation(org, "New@Acme.com")
	require.NoError(t, s.CreateInvitation(ctx, inv))
	assert.ErrorIs(t, s.CreateInvitation(ctx, sampleInvitation(org, "new@acme.com")), tenancy.ErrConflict, "one pending invitation per address")
	require.NoError(t, s.CreateInvitation(ctx, sampleInvitation(tenancy.OrgID(newID()), "new@acme.com")), "another organization's")

	got, err := s.Invitation(ctx, inv.ID)
	require.NoError(t, err)
	assert.Equal(t, "new@acme.com", got.Email)
	assert.Equal(t, inv.TokenHash, got.TokenHash)
	assert.Equal(t, inv.InvitedBy, got.InvitedBy)
	assert.True(t, inv.ExpiresAt.Equal(got.ExpiresAt))

	second := sampleInvitation(org, "second@acme.com")
	second.CreatedAt = inv.CreatedAt.Add(time.Second)
	require.NoError(t, s.CreateInvitation(ctx, second))
	list, err := s.OrgInvitations(ctx, org)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, inv.ID, list[0].ID, "oldest first")

	require.NoError(t, s.DeleteInvitation(ctx, inv.ID))
	assert.ErrorIs(t, s.DeleteInvitation(ctx, inv.ID), tenancy.ErrNotFound)
	_, err = s.Invitation(ctx, inv.ID)
	assert.ErrorIs(t, err, tenancy.ErrNotFound)
	require.NoError(t, s.CreateInvitation(ctx, sampleInvitation(org, "new@acme.com")), "the address is free again")

	expired := sampleInvitation(org, "late@acme.com")
	expired.ExpiresAt = now().Add(-time.Minute)
	require.NoError(t, s.CreateInvitation(ctx, expired))
	n, err := s.DeleteExpiredInvitations(ctx, now())
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "the expired one only")
	_, err = s.Invitation(ctx, expired.ID)
	assert.ErrorIs(t, err, tenancy.ErrNotFound)
	list, err = s.OrgInvitations(ctx, org)
	require.NoError(t, err)
	assert.Len(t, list, 2, "the pending ones stay")
}

func testConcurrentCreateInvitation(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	org := tenancy.OrgID(newID())
	errs := race(8, func(int) error { return s.CreateInvitation(ctx, sampleInvitation(org, "race@acme.com")) })
	assertOneWinner(t, errs)
}
