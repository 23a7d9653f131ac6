package tenancy_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/memstore"
	"github.com/tenancy/tenancy/mongotest"
)

// authed logs email in to the organization orgName ("" for its home) and
// returns the token and its claims as AuthenticateToken gives them.
func authed(t *testing.T, m *tenancy.Manager, email, password, orgName string) (*tenancy.Token, *tenancy.Claims) {
	t.Helper()
	tok, err := m.LoginTo(t.Context(), email, password, orgName)
	require.NoError(t, err, "login of %s to %q", email, orgName)
	c, err := m.AuthenticateToken(t.Context(), tok.AccessToken)
	require.NoError(t, err)
	return tok, c
}

// invite invites email to the organization of c with role and returns
// the token.
func invite(t *testing.T, m *tenancy.Manager, c *tenancy.Claims, email string, role tenancy.Role) string {
	t.Helper()
	_, token, err := m.Invite(t.Context(), c, tenancy.InviteParams{Email: email, Role: role})
	require.NoError(t, err)
	return token
}

func createOrg(t *testing.T, m *tenancy.Manager, name, email string) *tenancy.Org {
	t.Helper()
	org, err := m.CreateOrg(t.Context(), tenancy.CreateOrgParams{Name: name, AdminEmail: email, AdminPassword: "MySecurePassword123"})
	require.NoError(t, err)
	return org
}

const pw = "MySecurePassword123"

// cheap replaces bcrypt in the members' tests: they test journaling,
// roles and races, and their setup would otherwise spend minutes in
// bcrypt under the race detector.
var cheap = tenancy.WithCheapPasswordHashes()

func TestMembersFlow(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		m := newManager(t, store, cheap)
		a := createOrg(t, m, "Org A", "owner@a.com")
		b := createOrg(t, m, "Org B", "owner@b.com")
		_, owner := authed(t, m, "owner@a.com", pw, "")
		assert.Equal(t, tenancy.RoleOwner, owner.Role)

		// An admin with a new account, and a member whose account is B's owner.
		adminTok := invite(t, m, owner, "admin@a.com", tenancy.RoleAdmin)
		memberTok := invite(t, m, owner, "owner@b.com", "")
		_, err := m.AcceptInvitation(ctx, memberTok, "WrongPassword999")
		require.ErrorIs(t, err, tenancy.ErrUnauthenticated, "an existing account's password is required")
		// Memberships keep milliseconds: a join in the same one as B's
		// creation would tie with it.
		time.Sleep(2 * time.Millisecond)
		tok, err := m.AcceptInvitation(ctx, memberTok, pw)
		require.NoError(t, err)
		assert.Equal(t, a.ID, tok.OrgID)
		assert.Equal(t, tenancy.RoleMember, tok.Role)
		_, err = m.AcceptInvitation(ctx, memberTok, pw)
		require.ErrorIs(t, err, tenancy.ErrNotFound, "an invitation is used once")
		tok, err = m.AcceptInvitation(ctx, adminTok, "AdminPassword123")
		require.NoError(t, err)
		adminID := tok.AdminID

		// The member's home is still B; it logs in to A by name.
		_, inB := authed(t, m, "owner@b.com", pw, "")
		assert.Equal(t, b.ID, inB.OrgID)
		assert.Equal(t, tenancy.RoleOwner, inB.Role)
		memberInA, inA := authed(t, m, "owner@b.com", pw, "Org A")
		assert.Equal(t, a.ID, inA.OrgID)
		assert.Equal(t, tenancy.RoleMember, inA.Role)
		_, err = m.LoginTo(ctx, "admin@a.com", "AdminPassword123", "Org B")
		require.ErrorIs(t, err, tenancy.ErrUnauthenticated, "no token for an organization one is not a member of")

		// Each token reaches only its organization's documents.
		_, err = m.Tenant(inA.OrgID).Insert(ctx, map[string]any{"org": "a"})
		require.NoError(t, err)
		docsB, err := m.Tenant(inB.OrgID).List(ctx, "", 10)
		require.NoError(t, err)
		assert.Empty(t, docsB)

		// Me and switching.
		me, err := m.Me(ctx, inA)
		require.NoError(t, err)
		require.Len(t, me.Organizations, 2)
		assert.Equal(t, b.ID, me.Organizations[0].OrgID, "oldest membership first")
		assert.Equal(t, tenancy.RoleMember, me.Organizations[1].Role)
		switched, err := m.SwitchOrg(ctx, inA, "Org B")
		require.NoError(t, err)
		assert.Equal(t, b.ID, switched.OrgID)
		_, err = m.AuthenticateToken(ctx, memberInA.AccessToken)
		require.NoError(t, err, "switching does not revoke the token of A")
		_, adminClaims := authed(t, m, "admin@a.com", "AdminPassword123", "")
		_, err = m.SwitchOrg(ctx, adminClaims, "Org B")
		require.ErrorIs(t, err, tenancy.ErrForbidden)

		members, next, err := m.Members(ctx, inA, "", 10)
		require.NoError(t, err)
		assert.Len(t, members, 3)
		assert.Empty(t, next)
		page, next, err := m.Members(ctx, inA, "", 2)
		require.NoError(t, err)
		require.Len(t, page, 2)
		rest, _, err := m.Members(ctx, inA, next, 2)
		require.NoError(t, err)
		assert.Len(t, rest, 1)

		// Demote, promote, transfer.
		_, err = m.ChangeRole(ctx, inA, adminID, tenancy.RoleMember)
		require.ErrorIs(t, err, tenancy.ErrForbidden, "a member changes no roles")
		mb, err := m.ChangeRole(ctx, owner, adminID, tenancy.RoleOwner)
		require.NoError(t, err)
		assert.Equal(t, tenancy.RoleOwner, mb.Role)
		c, err := m.AuthenticateToken(ctx, tok.AccessToken)
		require.NoError(t, err)
		assert.Equal(t, tenancy.RoleOwner, c.Role, "the role read now, not the token's")
		_, err = m.ChangeRole(ctx, c, owner.AdminID, tenancy.RoleAdmin)
		require.ErrorIs(t, err, tenancy.ErrConflict, "the primary owner is not demoted")
		_, err = m.TransferOwnership(ctx, c, owner.AdminID)
		require.ErrorIs(t, err, tenancy.ErrForbidden, "only the primary owner transfers")
		org, err := m.TransferOwnership(ctx, owner, adminID)
		require.NoError(t, err)
		assert.Equal(t, adminID, org.AdminID)
		assert.Equal(t, "admin@a.com", org.AdminEmail)
		_, err = m.ChangeRole(ctx, c, owner.AdminID, tenancy.RoleMember)
		require.NoError(t, err, "the former primary owner can be demoted now")
		_, err = m.ChangeRole(ctx, c, adminID, tenancy.RoleAdmin)
		require.ErrorIs(t, err, tenancy.ErrConflict)

		// Remove: the token of A stops at once; B's keeps working.
		require.ErrorIs(t, m.RemoveMember(ctx, inA, owner.AdminID), tenancy.ErrForbidden, "a member removes only itself")
		require.NoError(t, m.RemoveMember(ctx, c, inA.AdminID))
		_, err = m.AuthenticateToken(ctx, memberInA.AccessToken)
		require.ErrorIs(t, err, tenancy.ErrUnauthenticated)
		_, err = m.AuthenticateToken(ctx, switched.AccessToken)
		require.NoError(t, err)

		// Delete A: its accounts that belong nowhere else go; B stays whole.
		reinvite := invite(t, m, c, "owner@b.com", tenancy.RoleMember)
		_, err = m.AcceptInvitation(ctx, reinvite, pw)
		require.NoError(t, err)
		_, inA = authed(t, m, "owner@b.com", pw, "Org A")
		require.NoError(t, m.DeleteOrg(ctx, a.ID))
		_, err = m.AuthenticateToken(ctx, tok.AccessToken)
		require.ErrorIs(t, err, tenancy.ErrUnauthenticated)
		_, err = store.AdminByEmail(ctx, "admin@a.com")
		require.ErrorIs(t, err, tenancy.ErrNotFound, "an account in A alone is deleted")
		_, err = store.AdminByEmail(ctx, "owner@a.com")
		require.ErrorIs(t, err, tenancy.ErrNotFound)
		_, err = m.AuthenticateToken(ctx, switched.AccessToken)
		require.NoError(t, err, "B's token")
		me, err = m.Me(ctx, inB)
		require.NoError(t, err)
		assert.Len(t, me.Organizations, 1)
		_, err = m.Login(ctx, "owner@b.com", pw)
		require.NoError(t, err)
		left, err := store.OrgInvitations(ctx, a.ID)
		require.NoError(t, err)
		assert.Empty(t, left)
		_ = inA
	})
}

func TestInvitationRules(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		var sent []string
		m := newManager(t, store, cheap, tenancy.WithInvitationNotifier(func(_ context.Context, inv tenancy.Invitation, token string) error {
			sent = append(sent, inv.Email+" "+token)
			if inv.Email == "bounce@a.com" {
				return errors.New("mail server said no")
			}
			return nil
		}))
		createOrg(t, m, "Org A", "owner@a.com")
		_, owner := authed(t, m, "owner@a.com", pw, "")

		for _, hidden := range []string{"mem@a.com\u200b", "m\u00adem@a.com", "mem@a.com\x00"} {
			_, _, err := m.Invite(ctx, owner, tenancy.InviteParams{Email: hidden})
			assert.Equal(t, map[string]string{"email": "must not contain invisible or control characters"}, fieldsOf(t, err), "%q", hidden)
		}
		_, _, err := m.Invite(ctx, owner, tenancy.InviteParams{Email: "not an email", Role: "boss"})
		assert.Equal(t, map[string]string{"email": "must be an email address like admin@example.com", "role": `must be "owner", "admin" or "member"`}, fieldsOf(t, err))
		_, _, err = m.Invite(ctx, owner, tenancy.InviteParams{Email: "owner@a.com"})
		require.ErrorIs(t, err, tenancy.ErrConflict, "already a member")

		inv, token, err := m.Invite(ctx, owner, tenancy.InviteParams{Email: "New@A.com", Role: tenancy.RoleAdmin})
		require.NoError(t, err)
		assert.Equal(t, "new@a.com", inv.Email)
		assert.Equal(t, []string{"new@a.com " + token}, sent, "the notifier gets the token")
		stored, err := store.Invitation(ctx, inv.ID)
		require.NoError(t, err)
		assert.NotContains(t, string(stored.TokenHash), token[25:], "only a hash of the token is stored")
		_, _, err = m.Invite(ctx, owner, tenancy.InviteParams{Email: "new@a.com"})
		require.ErrorIs(t, err, tenancy.ErrConflict, "already invited")

		_, _, err = m.Invite(ctx, owner, tenancy.InviteParams{Email: "bounce@a.com"})
		require.Error(t, err)
		list, err := m.Invitations(ctx, owner)
		require.NoError(t, err)
		require.Len(t, list, 1, "a failed notification leaves no invitation")
		assert.Nil(t, list[0].TokenHash)

		for _, bad := range []string{"", "x", token + "x", token[:24] + "." + token[26:] + "AA", "0123456789abcdef01234567.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
			_, err := m.AcceptInvitation(ctx, bad, pw)
			assert.ErrorIs(t, err, tenancy.ErrNotFound, "token %q", bad)
		}
		_, err = m.AcceptInvitation(ctx, token, "short")
		assert.Equal(t, map[string]string{"password": "must be at least 8 bytes"}, fieldsOf(t, err))

		require.NoError(t, m.RevokeInvitation(ctx, owner, inv.ID))
		require.ErrorIs(t, m.RevokeInvitation(ctx, owner, inv.ID), tenancy.ErrNotFound)
		_, err = m.AcceptInvitation(ctx, token, pw)
		require.ErrorIs(t, err, tenancy.ErrNotFound, "a revoked invitation")

		// Expiry, on the Manager's clock.
		_, token, err = m.Invite(ctx, owner, tenancy.InviteParams{Email: "late@a.com"})
		require.NoError(t, err)
		later := newManager(t, store, cheap, tenancy.WithClock(func() time.Time { return time.Now().Add(tenancy.DefaultInvitationLifetime + time.Minute) }))
		_, err = later.AcceptInvitation(ctx, token, pw)
		require.ErrorIs(t, err, tenancy.ErrNotFound, "an expired invitation")
		_, laterOwner := authed(t, later, "owner@a.com", pw, "")
		_, _, err = later.Invite(ctx, laterOwner, tenancy.InviteParams{Email: "late@a.com"})
		require.NoError(t, err, "an expired invitation is replaced")

		// Recovery's full pass removes what expired.
		gone, _, err := m.Invite(ctx, owner, tenancy.InviteParams{Email: "gone@a.com"})
		require.NoError(t, err)
		rep, err := later.Recover(ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(1), rep.Expired, "the expired invitation")
		_, err = store.Invitation(ctx, gone.ID)
		require.ErrorIs(t, err, tenancy.ErrNotFound)
	})
}

// TestMemberPermissions checks the permission table of the Manager, row by
// row, for each role.
func TestMemberPermissions(t *testing.T) {
	for _, tc := range []struct {
		p     tenancy.Permission
		roles []tenancy.Role
	}{
		{tenancy.PermRenameOrg, []tenancy.Role{tenancy.RoleOwner, tenancy.RoleAdmin}},
		{tenancy.PermDeleteOrg, []tenancy.Role{tenancy.RoleOwner}},
		{tenancy.PermInvite, []tenancy.Role{tenancy.RoleOwner, tenancy.RoleAdmin}},
		{tenancy.PermListMembers, []tenancy.Role{tenancy.RoleOwner, tenancy.RoleAdmin, tenancy.RoleMember}},
		{tenancy.PermChangeRoles, []tenancy.Role{tenancy.RoleOwner, tenancy.RoleAdmin}},
		{tenancy.PermRemoveMembers, []tenancy.Role{tenancy.RoleOwner, tenancy.RoleAdmin}},
		{tenancy.PermTransferOwnership, []tenancy.Role{tenancy.RoleOwner}},
		{tenancy.PermTenantDocuments, []tenancy.Role{tenancy.RoleOwner, tenancy.RoleAdmin, tenancy.RoleMember}},
	} {
		for _, r := range []tenancy.Role{tenancy.RoleOwner, tenancy.RoleAdmin, tenancy.RoleMember, "root"} {
			want := false
			for _, ok := range tc.roles {
				want = want || ok == r
			}
			assert.Equal(t, want, (&tenancy.Claims{Role: r}).Can(tc.p), "%s %s", r, tc.p)
		}
	}
	assert.False(t, (*tenancy.Claims)(nil).Can(tenancy.PermListMembers))
}

// team creates "Org A" with an owner and accepts invitations for an admin
// and a member, and returns the three claims.
func team(t *testing.T, m *tenancy.Manager) (owner, admin, member *tenancy.Claims) {
	t.Helper()
	createOrg(t, m, "Org A", "owner@a.com")
	_, owner = authed(t, m, "owner@a.com", pw, "")
	for email, role := range map[string]tenancy.Role{"admin@a.com": tenancy.RoleAdmin, "member@a.com": tenancy.RoleMember} {
		_, err := m.AcceptInvitation(t.Context(), invite(t, m, owner, email, role), pw)
		require.NoError(t, err)
	}
	_, admin = authed(t, m, "admin@a.com", pw, "")
	_, member = authed(t, m, "member@a.com", pw, "")
	return owner, admin, member
}

func TestConcurrentAcceptsOneWinner(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		m := newManager(t, store, cheap)
		createOrg(t, m, "Org A", "owner@a.com")
		_, owner := authed(t, m, "owner@a.com", pw, "")
		token := invite(t, m, owner, "new@a.com", tenancy.RoleMember)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { _, errs[i] = m.AcceptInvitation(t.Context(), token, pw) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
			}
		}
		assert.Equal(t, 1, won, "one accept wins: %v", errs)
		members, _, err := m.Members(t.Context(), owner, "", 10)
		require.NoError(t, err)
		assert.Len(t, members, 2)
	})
}

func TestOwnersDemotingEachOther(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		m := newManager(t, store, cheap)
		owner, admin, _ := team(t, m)
		_, err := m.ChangeRole(t.Context(), owner, admin.AdminID, tenancy.RoleOwner)
		require.NoError(t, err)
		_, second := authed(t, m, "admin@a.com", pw, "")
		// Hand over primary ownership, so that either owner may be demoted.
		_, err = m.TransferOwnership(t.Context(), owner, second.AdminID)
		require.NoError(t, err)
		_, first := authed(t, m, "owner@a.com", pw, "")
		// A third owner, who is not primary either; the two non-primary
		// owners demote each other at once.
		_, third := authed(t, m, "member@a.com", pw, "")
		_, err = m.ChangeRole(t.Context(), second, third.AdminID, tenancy.RoleOwner)
		require.NoError(t, err)
		_, third = authed(t, m, "member@a.com", pw, "")
		var wg sync.WaitGroup
		wg.Go(func() { _, _ = m.ChangeRole(t.Context(), first, third.AdminID, tenancy.RoleMember) })
		wg.Go(func() { _, _ = m.ChangeRole(t.Context(), third, first.AdminID, tenancy.RoleMember) })
		wg.Wait()
		owners := 0
		members, _, err := m.Members(t.Context(), second, "", 10)
		require.NoError(t, err)
		for _, mb := range members {
			if mb.Role == tenancy.RoleOwner {
				owners++
			}
		}
		assert.GreaterOrEqual(t, owners, 2, "the primary owner and at least one of the two")
	})
}

// TestLastOwnerStays checks that the primary owner, here the last owner
// too, can be neither removed nor demoted, and that a member may leave.
func TestLastOwnerStays(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		m := newManager(t, store, cheap)
		owner, _, member := team(t, m)
		require.ErrorIs(t, m.RemoveMember(t.Context(), owner, owner.AdminID), tenancy.ErrConflict, "the primary and last owner stays")
		_, err := m.ChangeRole(t.Context(), owner, owner.AdminID, tenancy.RoleAdmin)
		require.ErrorIs(t, err, tenancy.ErrConflict)
		require.NoError(t, m.RemoveMember(t.Context(), member, member.AdminID), "a member may leave")
		_, err = store.AdminByEmail(t.Context(), "member@a.com")
		require.ErrorIs(t, err, tenancy.ErrNotFound, "an account left in no organization is deleted")
	})
}

func TestInviteRacingAcceptance(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		m := newManager(t, store, cheap)
		createOrg(t, m, "Org A", "owner@a.com")
		createOrg(t, m, "Org B", "x@b.com")
		_, owner := authed(t, m, "owner@a.com", pw, "")
		token := invite(t, m, owner, "x@b.com", tenancy.RoleMember)
		var wg sync.WaitGroup
		var second string
		wg.Go(func() { _, _ = m.AcceptInvitation(t.Context(), token, pw) })
		wg.Go(func() {
			// Once the first is accepted, a second invitation is refused;
			// before, it is a duplicate. Either way, one membership.
			_, tok, err := m.Invite(t.Context(), owner, tenancy.InviteParams{Email: "x@b.com"})
			if err == nil {
				second = tok
			}
		})
		wg.Wait()
		if second != "" {
			_, err := m.AcceptInvitation(t.Context(), second, pw)
			require.ErrorIs(t, err, tenancy.ErrConflict)
		}
		members, _, err := m.Members(t.Context(), owner, "", 10)
		require.NoError(t, err)
		assert.Len(t, members, 2, "one membership of x@b.com")
	})
}

// joinAThenB has email accept an invitation of ownerA's organization (as
// a new account, whose home it is), then one of "Org B", whose owner is
// owner@b.com.
func joinAThenB(t *testing.T, m *tenancy.Manager, ownerA *tenancy.Claims, email string) {
	t.Helper()
	_, err := m.AcceptInvitation(t.Context(), invite(t, m, ownerA, email, tenancy.RoleMember), pw)
	require.NoError(t, err)
	_, ownerB := authed(t, m, "owner@b.com", pw, "")
	_, err = m.AcceptInvitation(t.Context(), invite(t, m, ownerB, email, tenancy.RoleMember), pw)
	require.NoError(t, err)
}

// eachCrashBoth runs fn for every fault, before and after the call, on
// memstore and on mongostore. The cases run at once, not under
// t.Parallel: each spends most of its time waiting for a lease to run
// out, which -parallel (the number of CPUs) would queue.
func eachCrashBoth(t *testing.T, faults []fault, fn func(t *testing.T, store testStore, f fault, after bool)) {
	t.Parallel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 12)
	for _, f := range faults {
		for _, after := range []bool{false, true} {
			for _, kind := range []string{"memstore", "mongostore"} {
				wg.Go(func() {
					sem <- struct{}{}
					defer func() { <-sem }()
					t.Run(fmt.Sprintf("%s#%d/after=%v/%s", f.method, f.nth, after, kind), func(t *testing.T) {
						var store testStore = memstore.New()
						if kind == "mongostore" {
							s := newStore(t, mongotest.NewDatabase(t))
							require.NoError(t, s.EnsureIndexes(t.Context()))
							store = s
						}
						fn(t, store, f, after)
					})
				})
			}
		}
	}
	wg.Wait()
}

func TestRecoverAccept(t *testing.T) {
	faults := []fault{
		{"LockOrg", 1}, {"LockOrg", 2}, {"PutOperation", 1}, {"CreateAdmin", 1}, {"AddMembership", 1},
		{"DeleteInvitation", 1}, {"DeleteOperation", 1}, {"UnlockOrg", 1},
	}
	eachCrashBoth(t, faults, func(t *testing.T, store testStore, f fault, after bool) {
		var token string
		var owner *tenancy.Claims
		crashAndRecoverWith(t, store, f, after, []tenancy.Option{cheap}, func(m *tenancy.Manager) {
			createOrg(t, m, "Org A", "owner@a.com")
			_, owner = authed(t, m, "owner@a.com", pw, "")
			token = invite(t, m, owner, "new@a.com", tenancy.RoleAdmin)
		}, func(m *tenancy.Manager) error {
			_, err := m.AcceptInvitation(t.Context(), token, pw)
			return err
		})
		m := newManager(t, store, cheap)
		members, _, err := m.Members(t.Context(), owner, "", 10)
		require.NoError(t, err)
		if len(members) == 2 {
			// Acknowledged: the member, its account, no invitation.
			_, err := m.LoginTo(t.Context(), "new@a.com", pw, "Org A")
			require.NoError(t, err)
			_, err = m.AcceptInvitation(t.Context(), token, pw)
			require.ErrorIs(t, err, tenancy.ErrNotFound, "the invitation is used")
			return
		}
		// Rolled back: no account, and the invitation still works.
		require.Len(t, members, 1)
		_, err = store.AdminByEmail(t.Context(), "new@a.com")
		require.ErrorIs(t, err, tenancy.ErrNotFound, "no account without a membership")
		tok, err := m.AcceptInvitation(t.Context(), token, pw)
		require.NoError(t, err)
		assert.Equal(t, tenancy.RoleAdmin, tok.Role)
	})
}

func TestRecoverRemoveMember(t *testing.T) {
	faults := []fault{
		{"LockOrg", 1}, {"LockOrg", 2}, {"PutOperation", 1}, {"SetAdminHome", 1}, {"DeleteMembership", 1},
		{"DeleteOperation", 1}, {"UnlockOrg", 1},
	}
	eachCrashBoth(t, faults, func(t *testing.T, store testStore, f fault, after bool) {
		var owner, x *tenancy.Claims
		crashAndRecoverWith(t, store, f, after, []tenancy.Option{cheap}, func(m *tenancy.Manager) {
			// x's home is A; it is a member of B too.
			createOrg(t, m, "Org A", "owner@a.com")
			createOrg(t, m, "Org B", "owner@b.com")
			_, owner = authed(t, m, "owner@a.com", pw, "")
			joinAThenB(t, m, owner, "x@a.com")
			_, x = authed(t, m, "x@a.com", pw, "Org A")
		}, func(m *tenancy.Manager) error {
			return m.RemoveMember(t.Context(), owner, x.AdminID)
		})
		m := newManager(t, store, cheap)
		_, err := store.Membership(t.Context(), x.OrgID, x.AdminID)
		if err == nil {
			// Not begun: the old state.
			_, err := m.LoginTo(t.Context(), "x@a.com", pw, "Org A")
			require.NoError(t, err)
			return
		}
		require.ErrorIs(t, err, tenancy.ErrNotFound)
		tok, err := m.Login(t.Context(), "x@a.com", pw)
		require.NoError(t, err, "the account stays, with B as its home")
		orgB, err := m.OrgByName(t.Context(), "Org B")
		require.NoError(t, err)
		assert.Equal(t, orgB.ID, tok.OrgID)
	})
}

func TestRecoverTransfer(t *testing.T) {
	faults := []fault{{"PutOperation", 1}, {"SetMemberRole", 1}, {"UpdateOrg", 1}, {"DeleteOperation", 1}}
	eachCrashBoth(t, faults, func(t *testing.T, store testStore, f fault, after bool) {
		var owner, admin *tenancy.Claims
		crashAndRecoverWith(t, store, f, after, []tenancy.Option{cheap}, func(m *tenancy.Manager) {
			owner, admin, _ = team(t, m)
		}, func(m *tenancy.Manager) error {
			_, err := m.TransferOwnership(t.Context(), owner, admin.AdminID)
			return err
		})
		org, err := store.OrgByID(t.Context(), owner.OrgID)
		require.NoError(t, err)
		mb, err := store.Membership(t.Context(), org.ID, admin.AdminID)
		require.NoError(t, err)
		if org.AdminID == admin.AdminID {
			assert.Equal(t, "admin@a.com", org.AdminEmail)
			assert.Equal(t, tenancy.RoleOwner, mb.Role, "the new primary owner is an owner")
			return
		}
		assert.Equal(t, owner.AdminID, org.AdminID)
		assert.Equal(t, tenancy.RoleAdmin, mb.Role, "the old state, whole")
	})
}

func TestRecoverDeleteWithMembers(t *testing.T) {
	faults := []fault{
		{"PutOperation", 1}, {"UpdateOrg", 1}, {"DeleteAdmin", 1}, {"SetAdminHome", 1}, {"DeleteMembership", 1},
		{"DeleteMembership", 2}, {"DeleteMembership", 3}, {"DeleteInvitation", 1}, {"DropTenantCollection", 1}, {"DeleteOrg", 1}, {"DeleteOperation", 1},
	}
	eachCrashBoth(t, faults, func(t *testing.T, store testStore, f fault, after bool) {
		var owner *tenancy.Claims
		crashAndRecoverWith(t, store, f, after, []tenancy.Option{cheap}, func(m *tenancy.Manager) {
			createOrg(t, m, "Org A", "owner@a.com")
			createOrg(t, m, "Org B", "owner@b.com")
			_, owner = authed(t, m, "owner@a.com", pw, "")
			// B's owner joins A (its home stays B); x joins A, then B
			// (its home is A).
			_, err := m.AcceptInvitation(t.Context(), invite(t, m, owner, "owner@b.com", tenancy.RoleMember), pw)
			require.NoError(t, err)
			joinAThenB(t, m, owner, "x@a.com")
			invite(t, m, owner, "pending@a.com", tenancy.RoleMember)
		}, func(m *tenancy.Manager) error {
			return m.DeleteOrg(t.Context(), owner.OrgID)
		})
		m := newManager(t, store, cheap)
		if _, err := m.OrgByID(t.Context(), owner.OrgID); err == nil {
			members, _, err := m.Members(t.Context(), owner, "", 10)
			require.NoError(t, err)
			assert.Len(t, members, 3, "not begun: the old state, whole")
			return
		}
		_, err := store.AdminByEmail(t.Context(), "owner@a.com")
		require.ErrorIs(t, err, tenancy.ErrNotFound)
		invs, err := store.OrgInvitations(t.Context(), owner.OrgID)
		require.NoError(t, err)
		assert.Empty(t, invs)
		tok, err := m.Login(t.Context(), "owner@b.com", pw)
		require.NoError(t, err, "B's owner keeps B")
		me, err := m.Me(t.Context(), &tenancy.Claims{AdminID: tok.AdminID, OrgID: tok.OrgID, Role: tok.Role})
		require.NoError(t, err)
		assert.Len(t, me.Organizations, 1)
		tok, err = m.Login(t.Context(), "x@a.com", pw)
		require.NoError(t, err, "x keeps B, its home now")
		assert.Equal(t, me.Organizations[0].OrgID, tok.OrgID)
		assertNoTrace(t, store, "org-a", "owner@a.com")
	})
}

// TestRecoverRemoveLastMembership crashes the removal of a member that
// belongs nowhere else, whose account goes with it: recovery leaves the
// member with its account, or neither.
func TestRecoverRemoveLastMembership(t *testing.T) {
	faults := []fault{{"PutOperation", 1}, {"DeleteAdmin", 1}, {"DeleteMembership", 1}, {"DeleteOperation", 1}}
	eachCrashBoth(t, faults, func(t *testing.T, store testStore, f fault, after bool) {
		var owner, member *tenancy.Claims
		crashAndRecoverWith(t, store, f, after, []tenancy.Option{cheap}, func(m *tenancy.Manager) {
			owner, _, member = team(t, m)
		}, func(m *tenancy.Manager) error {
			return m.RemoveMember(t.Context(), owner, member.AdminID)
		})
		_, merr := store.Membership(t.Context(), member.OrgID, member.AdminID)
		_, aerr := store.AdminByID(t.Context(), member.AdminID)
		if merr == nil {
			require.NoError(t, aerr, "a member keeps its account")
			_, err := newManager(t, store, cheap).Login(t.Context(), "member@a.com", pw)
			require.NoError(t, err)
			return
		}
		require.ErrorIs(t, merr, tenancy.ErrNotFound)
		require.ErrorIs(t, aerr, tenancy.ErrNotFound, "an account in no organization is deleted")
	})
}

// TestRenameAndDeleteCheckTheRoleHeldNow demotes an owner in one process
// while another, whose cache still holds the old role, serves its token:
// RenameOrgAs and DeleteOrgAs read the role under the lock, and refuse.
func TestRenameAndDeleteCheckTheRoleHeldNow(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		m := newManager(t, store, cheap)
		owner, admin, _ := team(t, m)
		_, err := m.ChangeRole(ctx, owner, admin.AdminID, tenancy.RoleOwner)
		require.NoError(t, err)
		tok, err := m.LoginTo(ctx, "admin@a.com", pw, "")
		require.NoError(t, err)
		other := newManager(t, store, cheap, tenancy.WithCache(100, time.Hour))
		stale, err := other.AuthenticateToken(ctx, tok.AccessToken)
		require.NoError(t, err)
		require.Equal(t, tenancy.RoleOwner, stale.Role)

		_, err = m.ChangeRole(ctx, owner, admin.AdminID, tenancy.RoleMember)
		require.NoError(t, err)
		stale, err = other.AuthenticateToken(ctx, tok.AccessToken)
		require.NoError(t, err)
		require.Equal(t, tenancy.RoleOwner, stale.Role, "the cache still says owner")
		require.ErrorIs(t, other.DeleteOrgAs(ctx, stale), tenancy.ErrForbidden)
		_, err = other.RenameOrgAs(ctx, stale, "Org Renamed")
		require.ErrorIs(t, err, tenancy.ErrForbidden)
		_, err = m.OrgByID(ctx, owner.OrgID)
		require.NoError(t, err, "not deleted")

		_, err = other.RenameOrgAs(ctx, owner, "Org Renamed")
		require.NoError(t, err, "the owner may")
		require.NoError(t, other.DeleteOrgAs(ctx, owner))
	})
}

// TestRenameSettlesACrashedMemberOperation crashes an accept after its
// account was created; a rename that takes the lock before the recovery
// loop settles the accept first, instead of writing over its journal
// entry.
func TestRenameSettlesACrashedMemberOperation(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		m := newManager(t, store, cheap)
		createOrg(t, m, "Org A", "owner@a.com")
		_, owner := authed(t, m, "owner@a.com", pw, "")
		token := invite(t, m, owner, "new@a.com", tenancy.RoleMember)
		dying := &failingStore{testStore: store, method: "AddMembership", nth: 1, crash: true}
		_, err := newManager(t, dying, cheap, tenancy.WithOperationLease(tenancy.MinOperationLease)).AcceptInvitation(ctx, token, pw)
		require.Error(t, err)
		_, err = store.AdminByEmail(ctx, "new@a.com")
		require.NoError(t, err, "the crash left the account without its membership")

		later := newManager(t, store, cheap, tenancy.WithClock(func() time.Time { return time.Now().Add(time.Minute) }))
		_, err = later.RenameOrg(ctx, owner.OrgID, "Org Renamed")
		require.NoError(t, err)
		_, err = store.AdminByEmail(ctx, "new@a.com")
		require.ErrorIs(t, err, tenancy.ErrNotFound, "the accept was rolled back first")
		assertJournalEmpty(t, store)
		_, err = later.AcceptInvitation(ctx, token, pw)
		require.NoError(t, err, "and the invitation still works")
	})
}

// TestLegacyOwnerKeepsAccount is an organization created before
// memberships (its owner has no membership record): its owner joins
// another organization and leaves it, and keeps its account.
func TestLegacyOwnerKeepsAccount(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		m := newManager(t, store, cheap)
		a := createOrg(t, m, "Org A", "owner@a.com")
		createOrg(t, m, "Org B", "owner@b.com")
		require.NoError(t, store.DeleteMembership(ctx, a.ID, a.AdminID))
		_, legacy := authed(t, m, "owner@a.com", pw, "")
		assert.Equal(t, tenancy.RoleOwner, legacy.Role, "the primary owner without a record")
		_, ownerB := authed(t, m, "owner@b.com", pw, "")
		_, err := m.AcceptInvitation(ctx, invite(t, m, ownerB, "owner@a.com", tenancy.RoleMember), pw)
		require.NoError(t, err)
		_, inB := authed(t, m, "owner@a.com", pw, "Org B")
		require.NoError(t, m.RemoveMember(ctx, inB, inB.AdminID))
		tok, err := m.Login(ctx, "owner@a.com", pw)
		require.NoError(t, err, "the account stays")
		assert.Equal(t, a.ID, tok.OrgID)
		mb, err := store.Membership(ctx, a.ID, a.AdminID)
		require.NoError(t, err, "and has its record now")
		assert.Equal(t, tenancy.RoleOwner, mb.Role)
	})
}

// TestRejoinDoesNotReviveOldTokens removes a member and invites it back:
// the tokens of its first membership stay refused.
func TestRejoinDoesNotReviveOldTokens(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		clock := newTestClock()
		m := newManager(t, store, cheap, clock.opt())
		createOrg(t, m, "Org A", "owner@a.com")
		createOrg(t, m, "Org B", "x@b.com") // so that x keeps its account
		_, owner := authed(t, m, "owner@a.com", pw, "")
		_, err := m.AcceptInvitation(ctx, invite(t, m, owner, "x@b.com", tenancy.RoleAdmin), pw)
		require.NoError(t, err)
		old, x := authed(t, m, "x@b.com", pw, "Org A")

		clock.add(time.Second)
		require.NoError(t, m.RemoveMember(ctx, owner, x.AdminID))
		clock.add(time.Second)
		_, err = m.AcceptInvitation(ctx, invite(t, m, owner, "x@b.com", tenancy.RoleMember), pw)
		require.NoError(t, err)
		_, err = m.AuthenticateToken(ctx, old.AccessToken)
		require.ErrorIs(t, err, tenancy.ErrUnauthenticated, "a token of the membership that ended")
		authed(t, m, "x@b.com", pw, "Org A") // a new one works
	})
}

// TestRefusedMemberCallsTakeNoLock checks that a member's calls bound to
// fail are refused before the organization's lock, which other
// operations wait for.
func TestRefusedMemberCallsTakeNoLock(t *testing.T) {
	t.Parallel()
	store := &failingStore{testStore: memstore.New()}
	m := newManager(t, store, cheap)
	owner, admin, member := team(t, m)
	locks := store.count("LockOrg")
	require.ErrorIs(t, m.RemoveMember(t.Context(), member, admin.AdminID), tenancy.ErrForbidden)
	require.ErrorIs(t, m.RemoveMember(t.Context(), owner, "0123456789abcdef01234567"), tenancy.ErrNotFound)
	_, err := m.ChangeRole(t.Context(), member, admin.AdminID, tenancy.RoleMember)
	require.ErrorIs(t, err, tenancy.ErrForbidden)
	_, err = m.ChangeRole(t.Context(), owner, "0123456789abcdef01234567", tenancy.RoleMember)
	require.ErrorIs(t, err, tenancy.ErrNotFound)
	_, _, err = m.Invite(t.Context(), member, tenancy.InviteParams{Email: "x@a.com"})
	require.ErrorIs(t, err, tenancy.ErrForbidden)
	assert.Equal(t, locks, store.count("LockOrg"), "no lock taken")
}
