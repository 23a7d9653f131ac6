package apitest_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/crypto/bcrypt"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/httpapi"
)

const teamPW = "MySecurePassword123"

// teamOf is an organization with an owner, an admin and a member, each
// with a token for it.
type teamOf struct {
	org                    map[string]any
	owner, admin, member   string // tokens
	ownerID, adminID, mbID string
}

// newTeam creates the organization name over HTTP, invites an admin and a
// member and has them accept, and logs all three in.
func newTeam(t *testing.T, h http.Handler, name, prefix string) teamOf {
	t.Helper()
	var tm teamOf
	tm.org = create(t, h, name, prefix+"owner@example.com", teamPW)
	tm.owner = login(t, h, prefix+"owner@example.com", teamPW)
	for _, who := range []struct {
		email, role string
		tok, id     *string
	}{
		{prefix + "admin@example.com", "admin", &tm.admin, &tm.adminID},
		{prefix + "member@example.com", "member", &tm.member, &tm.mbID},
	} {
		r := do(t, h, call{method: "POST", target: "/org/invitations", token: tm.owner, body: map[string]string{"email": who.email, "role": who.role}})
		require.Equal(t, http.StatusCreated, r.status, string(r.raw))
		a := do(t, h, call{method: "POST", target: "/invitations/accept", body: map[string]string{"token": r.body["token"].(string), "password": teamPW}})
		require.Equal(t, http.StatusOK, a.status, string(a.raw))
		*who.tok, *who.id = a.body["access_token"].(string), a.body["admin_id"].(string)
	}
	me := do(t, h, call{method: "GET", target: "/admin/me", token: tm.owner})
	require.Equal(t, http.StatusOK, me.status)
	tm.ownerID = me.body["admin_id"].(string)
	return tm
}

var (
	teamHashOnce sync.Once
	teamHash     []byte
)

// quickTeam is newTeam with one bcrypt hash instead of six: the
// organization is created over HTTP, and the admin and the member are
// written into the store with a hash made once for all teams, their
// tokens issued without a login. The permission table needs forty-five
// teams; under the race detector, bcrypt would take minutes of them.
func quickTeam(t *testing.T, e *env, name, prefix string) teamOf {
	t.Helper()
	teamHashOnce.Do(func() {
		var err error
		teamHash, err = bcrypt.GenerateFromPassword([]byte(teamPW), tenancy.MinBcryptCost)
		require.NoError(t, err)
	})
	ctx := t.Context()
	tm := teamOf{org: create(t, e.h, name, prefix+"owner@example.com", teamPW)}
	org := tenancy.OrgID(tm.org["id"].(string))
	owner, err := e.store.AdminByEmail(ctx, prefix+"owner@example.com")
	require.NoError(t, err)
	tm.ownerID = string(owner.ID)
	tm.owner = issue(t, e, owner, &tenancy.Membership{OrgID: org, AdminID: owner.ID, Role: tenancy.RoleOwner})
	for _, who := range []struct {
		role    tenancy.Role
		tok, id *string
	}{{tenancy.RoleAdmin, &tm.admin, &tm.adminID}, {tenancy.RoleMember, &tm.member, &tm.mbID}} {
		now := time.Now().UTC().Truncate(time.Millisecond)
		a := &tenancy.Admin{ID: tenancy.AdminID(bson.NewObjectID().Hex()), Email: prefix + string(who.role) + "@example.com", PasswordHash: teamHash, OrgID: org, CreatedAt: now}
		require.NoError(t, e.store.CreateAdmin(ctx, a))
		mb := &tenancy.Membership{OrgID: org, AdminID: a.ID, Email: a.Email, Role: who.role, JoinedAt: now}
		require.NoError(t, e.store.AddMembership(ctx, mb))
		*who.tok, *who.id = issue(t, e, a, mb), string(a.ID)
	}
	return tm
}

func issue(t *testing.T, e *env, a *tenancy.Admin, mb *tenancy.Membership) string {
	t.Helper()
	tok, err := e.m.IssueToken(a, mb)
	require.NoError(t, err)
	return tok.AccessToken
}

func (tm teamOf) token(role string) string {
	return map[string]string{"owner": tm.owner, "admin": tm.admin, "member": tm.member}[role]
}

func (tm teamOf) id(role string) string {
	return map[string]string{"owner": tm.ownerID, "admin": tm.adminID, "member": tm.mbID}[role]
}

// TestPermissionTable checks DESIGN.md's permission table over HTTP, one
// row per cell: each on a team of its own, so that no cell depends on
// another.
func TestPermissionTable(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, nil, []httpapi.Option{httpapi.WithLoginRateLimit(0, 0)})
	type cell struct {
		action, role string
		req          func(tm teamOf) call
		status       int
	}
	cells := []cell{}
	for _, role := range []string{"owner", "admin", "member"} {
		want := func(owner, admin, member int) int {
			return map[string]int{"owner": owner, "admin": admin, "member": member}[role]
		}
		cells = append(cells,
			cell{"rename", role, func(tm teamOf) call {
				return call{method: "PUT", target: "/org/update", token: tm.token(role), body: map[string]string{
					"organization_name": tm.org["organization_name"].(string) + " Renamed", "email": emailOf(tm, role), "password": teamPW}}
			}, want(200, 200, 403)},
			cell{"delete", role, func(tm teamOf) call {
				return call{method: "DELETE", target: "/org/delete", token: tm.token(role), body: map[string]string{"organization_name": tm.org["organization_name"].(string)}}
			}, want(200, 403, 403)},
			cell{"invite a member", role, func(tm teamOf) call {
				return call{method: "POST", target: "/org/invitations", token: tm.token(role), body: map[string]string{"email": "new@example.com", "role": "member"}}
			}, want(201, 201, 403)},
			cell{"invite an owner", role, func(tm teamOf) call {
				return call{method: "POST", target: "/org/invitations", token: tm.token(role), body: map[string]string{"email": "new@example.com", "role": "owner"}}
			}, want(201, 403, 403)},
			cell{"list invitations", role, func(tm teamOf) call {
				return call{method: "GET", target: "/org/invitations", token: tm.token(role)}
			}, want(200, 200, 403)},
			cell{"revoke an invitation", role, func(tm teamOf) call {
				return call{method: "DELETE", target: "/org/invitations/" + pendingInvitation(t, e.h, tm), token: tm.token(role)}
			}, want(200, 200, 403)},
			cell{"list members", role, func(tm teamOf) call {
				return call{method: "GET", target: "/org/members", token: tm.token(role)}
			}, want(200, 200, 200)},
			cell{"make the member an admin", role, func(tm teamOf) call {
				return call{method: "PUT", target: "/org/members/" + tm.mbID, token: tm.token(role), body: map[string]string{"role": "admin"}}
			}, want(200, 200, 403)},
			cell{"make the member an owner", role, func(tm teamOf) call {
				return call{method: "PUT", target: "/org/members/" + tm.mbID, token: tm.token(role), body: map[string]string{"role": "owner"}}
			}, want(200, 403, 403)},
			cell{"demote the primary owner", role, func(tm teamOf) call {
				return call{method: "PUT", target: "/org/members/" + tm.ownerID, token: tm.token(role), body: map[string]string{"role": "member"}}
			}, want(409, 403, 403)},
			cell{"remove the member", role, func(tm teamOf) call {
				return call{method: "DELETE", target: "/org/members/" + tm.mbID, token: tm.token(role)}
			}, want(200, 200, 200)}, // the member removes itself
			cell{"remove the admin", role, func(tm teamOf) call {
				return call{method: "DELETE", target: "/org/members/" + tm.adminID, token: tm.token(role)}
			}, want(200, 200, 403)}, // the admin removes itself
			cell{"remove the primary owner", role, func(tm teamOf) call {
				return call{method: "DELETE", target: "/org/members/" + tm.ownerID, token: tm.token(role)}
			}, want(409, 403, 403)},
			cell{"transfer primary ownership", role, func(tm teamOf) call {
				return call{method: "POST", target: "/org/transfer", token: tm.token(role), body: map[string]string{"admin_id": tm.adminID}}
			}, want(200, 403, 403)},
			cell{"read the events", role, func(tm teamOf) call {
				return call{method: "GET", target: "/org/events", token: tm.token(role)}
			}, want(200, 200, 403)},
			cell{"tenant documents", role, func(tm teamOf) call {
				return call{method: "POST", target: "/tenant/documents", token: tm.token(role), body: map[string]any{"by": role}}
			}, want(201, 201, 201)},
		)
	}
	for i, c := range cells {
		t.Run(c.action+"/"+c.role, func(t *testing.T) {
			t.Parallel()
			tm := quickTeam(t, e, "Team "+string(rune('A'+i/26))+string(rune('a'+i%26)), string(rune('a'+i/26))+string(rune('a'+i%26))+".")
			r := do(t, e.h, c.req(tm))
			assert.Equal(t, c.status, r.status, "%s as %s: %s", c.action, c.role, r.raw)
		})
	}
}

func emailOf(tm teamOf, role string) string {
	me := tm.org["admin_email"].(string) // <prefix>owner@example.com
	return me[:len(me)-len("owner@example.com")] + role + "@example.com"
}

// pendingInvitation invites someone to tm's organization as its owner and
// returns the invitation's id.
func pendingInvitation(t *testing.T, h http.Handler, tm teamOf) string {
	t.Helper()
	r := do(t, h, call{method: "POST", target: "/org/invitations", token: tm.owner, body: map[string]string{"email": "pending@example.com"}})
	require.Equal(t, http.StatusCreated, r.status, string(r.raw))
	return r.body["id"].(string)
}

// TestMembersFlow walks the members contract over HTTP: invitations, an
// account in two organizations, switching, role changes, removal,
// transfer, and the deletion of one organization leaving the other whole;
// and every error the endpoints document.
func TestMembersFlow(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, nil, []httpapi.Option{httpapi.WithLoginRateLimit(0, 0)})
	a := create(t, e.h, "Org A", "owner@a.com", teamPW)
	create(t, e.h, "Org B", "owner@b.com", teamPW)
	owner := login(t, e.h, "owner@a.com", teamPW)
	ownerB := login(t, e.h, "owner@b.com", teamPW)

	inv := func(tok string, body any) reply {
		return do(t, e.h, call{method: "POST", target: "/org/invitations", token: tok, body: body})
	}
	accept := func(token, password string) reply {
		return do(t, e.h, call{method: "POST", target: "/invitations/accept", body: map[string]string{"token": token, "password": password}})
	}

	// Invitations and their errors.
	r := inv(owner, map[string]string{"email": "admin@a.com", "role": "admin"})
	require.Equal(t, http.StatusCreated, r.status, string(r.raw))
	assert.Equal(t, "Org A", r.body["organization_name"])
	assert.Equal(t, "admin", r.body["role"])
	adminInvite := r.body["token"].(string)
	r = inv(owner, map[string]string{"email": "owner@b.com"})
	require.Equal(t, http.StatusCreated, r.status)
	assert.Equal(t, "member", r.body["role"], "member by default")
	memberInvite := r.body["token"].(string)
	assert.Equal(t, 409, inv(owner, map[string]string{"email": "owner@b.com"}).status, "already invited")
	assert.Equal(t, 409, inv(owner, map[string]string{"email": "owner@a.com"}).status, "already a member")
	r = do(t, e.h, call{method: "POST", target: "/org/invitations", token: owner, body: map[string]string{"email": "nope", "role": "boss"}, invalidRequest: true})
	assert.Equal(t, 400, r.status)
	assert.ElementsMatch(t, []string{"email", "role"}, fields(r))
	assert.Equal(t, 401, do(t, e.h, call{method: "POST", target: "/org/invitations", body: map[string]string{"email": "x@a.com"}, invalidRequest: true}).status)
	list := do(t, e.h, call{method: "GET", target: "/org/invitations", token: owner})
	require.Equal(t, 200, list.status)
	assert.Len(t, list.body["invitations"], 2)
	assert.NotContains(t, string(list.raw), adminInvite[25:], "never the token")
	assert.Equal(t, 401, do(t, e.h, call{method: "GET", target: "/org/invitations", invalidRequest: true}).status)
	assert.Equal(t, 404, do(t, e.h, call{method: "DELETE", target: "/org/invitations/0123456789abcdef01234567", token: owner}).status)
	assert.Equal(t, 401, do(t, e.h, call{method: "DELETE", target: "/org/invitations/0123456789abcdef01234567", invalidRequest: true}).status)

	// Accepting: a new account, and B's owner with its own password.
	assert.Equal(t, 400, do(t, e.h, call{method: "POST", target: "/invitations/accept", body: map[string]string{"token": adminInvite, "password": "short"}, invalidRequest: true}).status)
	assert.Equal(t, 404, accept("0123456789abcdef01234567.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", teamPW).status)
	assert.Equal(t, 401, accept(memberInvite, "NotTheRightOne1").status, "an existing account's password")
	r = accept(adminInvite, "AdminPassword123")
	require.Equal(t, 200, r.status, string(r.raw))
	admin := r.body["access_token"].(string)
	adminID := r.body["admin_id"].(string)
	assert.Equal(t, a["id"], r.body["org_id"])
	assert.Equal(t, 404, accept(adminInvite, "AdminPassword123").status, "used")
	r = accept(memberInvite, teamPW)
	require.Equal(t, 200, r.status, string(r.raw))
	memberA := r.body["access_token"].(string)
	memberID := r.body["admin_id"].(string)

	// The account in two organizations: login by name, me, switch.
	r = do(t, e.h, call{method: "POST", target: "/admin/login", body: map[string]string{"email": "owner@b.com", "password": teamPW, "organization_name": "Org A"}})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, a["id"], r.body["org_id"])
	r = do(t, e.h, call{method: "POST", target: "/admin/login", body: map[string]string{"email": "admin@a.com", "password": "AdminPassword123", "organization_name": "Org B"}})
	assert.Equal(t, 401, r.status, "not a member of B")
	me := do(t, e.h, call{method: "GET", target: "/admin/me", token: memberA})
	require.Equal(t, 200, me.status)
	assert.Equal(t, "member", me.body["role"])
	assert.Len(t, me.body["organizations"], 2)
	assert.Equal(t, 401, do(t, e.h, call{method: "GET", target: "/admin/me", invalidRequest: true}).status)
	sw := do(t, e.h, call{method: "POST", target: "/admin/switch", token: memberA, body: map[string]string{"organization_name": "Org B"}})
	require.Equal(t, 200, sw.status, string(sw.raw))
	memberB := sw.body["access_token"].(string)
	assert.NotEqual(t, a["id"], sw.body["org_id"])
	assert.Equal(t, 403, do(t, e.h, call{method: "POST", target: "/admin/switch", token: admin, body: map[string]string{"organization_name": "Org B"}}).status)
	assert.Equal(t, 404, do(t, e.h, call{method: "POST", target: "/admin/switch", token: admin, body: map[string]string{"organization_name": "Org Z"}}).status)
	assert.Equal(t, 400, do(t, e.h, call{method: "POST", target: "/admin/switch", token: admin, body: map[string]string{}, invalidRequest: true}).status)
	assert.Equal(t, 401, do(t, e.h, call{method: "POST", target: "/admin/switch", body: map[string]string{"organization_name": "Org B"}, invalidRequest: true}).status)

	// Each organization's token reaches only its documents.
	r = do(t, e.h, call{method: "POST", target: "/tenant/documents", token: memberA, body: map[string]any{"in": "a"}})
	require.Equal(t, 201, r.status)
	docA := r.body["id"].(string)
	assert.Equal(t, 404, do(t, e.h, call{method: "GET", target: "/tenant/documents/" + docA, token: memberB}).status)
	assert.Equal(t, 200, do(t, e.h, call{method: "GET", target: "/tenant/documents/" + docA, token: memberA}).status)

	// Members: pages and errors.
	page := do(t, e.h, call{method: "GET", target: "/org/members?limit=2", token: memberA})
	require.Equal(t, 200, page.status)
	assert.Len(t, page.body["members"], 2)
	next := page.body["next_after"].(string)
	page = do(t, e.h, call{method: "GET", target: "/org/members?limit=2&after=" + next, token: memberA})
	assert.Len(t, page.body["members"], 1)
	assert.Nil(t, page.body["next_after"])
	assert.Equal(t, 400, do(t, e.h, call{method: "GET", target: "/org/members?limit=0", token: memberA, invalidRequest: true}).status)
	assert.Equal(t, 401, do(t, e.h, call{method: "GET", target: "/org/members", invalidRequest: true}).status)

	// Roles.
	role := func(tok, id string, body any, invalid bool) reply {
		return do(t, e.h, call{method: "PUT", target: "/org/members/" + id, token: tok, body: body, invalidRequest: invalid})
	}
	assert.Equal(t, 400, role(owner, memberID, map[string]string{"role": "boss"}, true).status)
	assert.Equal(t, 404, role(owner, "0123456789abcdef01234567", map[string]string{"role": "admin"}, false).status)
	assert.Equal(t, 401, role("", memberID, map[string]string{"role": "admin"}, true).status)
	assert.Equal(t, 403, role(memberA, adminID, map[string]string{"role": "member"}, false).status)
	r = role(owner, memberID, map[string]string{"role": "admin"}, false)
	require.Equal(t, 200, r.status)
	assert.Equal(t, "admin", r.body["role"])
	me = do(t, e.h, call{method: "GET", target: "/admin/me", token: memberA})
	assert.Equal(t, "admin", me.body["role"], "the role held now, not the token's")
	r = role(owner, memberID, map[string]string{"role": "member"}, false)
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, "member", r.body["role"], "demoted")
	assert.Equal(t, 403, do(t, e.h, call{method: "GET", target: "/org/invitations", token: memberA}).status, "with the rights of a member again, at once")

	// Transfer.
	tr := func(tok string, body any, invalid bool) reply {
		return do(t, e.h, call{method: "POST", target: "/org/transfer", token: tok, body: body, invalidRequest: invalid})
	}
	assert.Equal(t, 403, tr(admin, map[string]string{"admin_id": adminID}, false).status)
	assert.Equal(t, 404, tr(owner, map[string]string{"admin_id": "0123456789abcdef01234567"}, false).status)
	assert.Equal(t, 400, tr(owner, map[string]string{}, true).status)
	assert.Equal(t, 401, tr("", map[string]string{"admin_id": adminID}, true).status)
	r = tr(owner, map[string]string{"admin_id": adminID}, false)
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, "admin@a.com", r.body["admin_email"])
	assert.Equal(t, "admin@a.com", do(t, e.h, call{method: "GET", target: "/org/get?organization_name=Org%20A"}).body["admin_email"])

	// Removal: the removed member's token for A stops; B's keeps working.
	rm := func(tok, id string, invalid bool) reply {
		return do(t, e.h, call{method: "DELETE", target: "/org/members/" + id, token: tok, invalidRequest: invalid})
	}
	assert.Equal(t, 409, rm(admin, adminID, false).status, "the primary owner stays")
	assert.Equal(t, 404, rm(admin, "0123456789abcdef01234567", false).status)
	assert.Equal(t, 401, rm("", memberID, true).status)
	r = rm(admin, memberID, false)
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, "Member removed", r.body["message"])
	assert.Equal(t, 401, do(t, e.h, call{method: "GET", target: "/tenant/documents", token: memberA}).status)
	assert.Equal(t, 200, do(t, e.h, call{method: "GET", target: "/tenant/documents", token: memberB}).status)
	assert.Equal(t, 409, rm(owner, adminID, false).status, "an owner may not remove the primary owner")

	// A pending invitation whose invitee became a member meanwhile (the
	// state an accept racing it leaves): 409, and it is used up.
	r = inv(owner, map[string]string{"email": "owner@b.com"})
	require.Equal(t, 201, r.status, string(r.raw))
	again := r.body["token"].(string)
	require.NoError(t, e.store.AddMembership(t.Context(), &tenancy.Membership{
		OrgID: tenancy.OrgID(a["id"].(string)), AdminID: tenancy.AdminID(memberID), Email: "owner@b.com", Role: tenancy.RoleMember,
	}))
	assert.Equal(t, 409, accept(again, teamPW).status)
	assert.Equal(t, 404, accept(again, teamPW).status)
	r = inv(owner, map[string]string{"email": "pending@a.com"})
	require.Equal(t, 201, r.status, string(r.raw))
	pending := r.body["token"].(string)

	// Deleting A: its own accounts go, B and its accounts stay.
	r = do(t, e.h, call{method: "DELETE", target: "/org/delete", token: admin, body: map[string]string{"organization_name": "Org A"}})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, 401, do(t, e.h, call{method: "GET", target: "/admin/me", token: admin}).status)
	r = do(t, e.h, call{method: "POST", target: "/admin/login", body: map[string]string{"email": "admin@a.com", "password": "AdminPassword123"}})
	assert.Equal(t, 401, r.status, "an account of A alone is gone")
	me = do(t, e.h, call{method: "GET", target: "/admin/me", token: ownerB})
	require.Equal(t, 200, me.status)
	assert.Len(t, me.body["organizations"], 1)
	assert.Equal(t, 200, do(t, e.h, call{method: "GET", target: "/org/get?organization_name=Org%20B"}).status)
	assert.Equal(t, 404, accept(pending, teamPW).status, "A's invitations went with it")
}

// TestAcceptRateLimited checks that accepting an invitation is limited
// per client address as login is.
func TestAcceptRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, nil, []httpapi.Option{httpapi.WithLoginRateLimit(0.001, 1)})
	body := map[string]string{"token": "0123456789abcdef01234567.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "password": teamPW}
	assert.Equal(t, 404, do(t, e.h, call{method: "POST", target: "/invitations/accept", body: body, remoteAddr: "192.0.2.7:1234"}).status)
	r := do(t, e.h, call{method: "POST", target: "/invitations/accept", body: body, remoteAddr: "192.0.2.7:1234"})
	assert.Equal(t, 429, r.status)
	assert.NotEmpty(t, r.header.Get("Retry-After"))
	assert.Equal(t, 404, do(t, e.h, call{method: "POST", target: "/invitations/accept", body: body, remoteAddr: "192.0.2.8:1234"}).status, "another address is not limited")
}

// TestMemberOperationsBusy holds an organization's lock as another
// process's operation would: member operations wait for it a few seconds,
// then answer 409.
func TestMemberOperationsBusy(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, nil, []httpapi.Option{httpapi.WithLoginRateLimit(0, 0)})
	tm := newTeam(t, e.h, "Busy Org", "busy.")
	id := pendingInvitation(t, e.h, tm)
	now := time.Now()
	require.NoError(t, e.store.LockOrg(t.Context(), tenancy.OrgID(tm.org["id"].(string)), "another process", now.Add(time.Minute), now))
	var wg sync.WaitGroup
	for _, c := range []call{
		{method: "DELETE", target: "/org/invitations/" + id, token: tm.owner},
		{method: "POST", target: "/org/transfer", token: tm.owner, body: map[string]string{"admin_id": tm.adminID}},
	} {
		wg.Go(func() {
			r := do(t, e.h, c)
			assert.Equal(t, http.StatusConflict, r.status, "%s %s: %s", c.method, c.target, r.raw)
		})
	}
	wg.Wait()
}
