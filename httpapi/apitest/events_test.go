package apitest_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/httpapi"
)

// TestEventsOverHTTP performs each operation over HTTP and reads the
// organization's audit log back through GET /org/events: exactly one
// event per acknowledged operation, in order, with the documented
// fields, in pages.
func TestEventsOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, nil, []httpapi.Option{httpapi.WithLoginRateLimit(0, 0)})
	const pw = "MySecurePassword123"
	ok := func(c call, status int) reply {
		t.Helper()
		r := do(t, e.h, c)
		require.Equal(t, status, r.status, "%s %s: %s", c.method, c.target, r.raw)
		return r
	}
	org := ok(call{method: "POST", target: "/org/create", body: map[string]string{"organization_name": "Audit Co", "email": "owner@audit.test", "password": pw}}, 201).body
	owner := ok(call{method: "POST", target: "/admin/login", body: map[string]string{"email": "owner@audit.test", "password": pw}}, 200).body["access_token"].(string)
	inv := ok(call{method: "POST", target: "/org/invitations", token: owner, body: map[string]string{"email": "x@audit.test"}}, 201).body
	xr := ok(call{method: "POST", target: "/invitations/accept", body: map[string]string{"token": inv["token"].(string), "password": pw}}, 200).body
	x, xID := xr["access_token"].(string), xr["admin_id"].(string)
	ok(call{method: "PUT", target: "/org/members/" + xID, token: owner, body: map[string]string{"role": "admin"}}, 200)
	inv2 := ok(call{method: "POST", target: "/org/invitations", token: owner, body: map[string]string{"email": "y@audit.test"}}, 201).body
	ok(call{method: "DELETE", target: "/org/invitations/" + inv2["id"].(string), token: owner}, 200)
	ok(call{method: "PUT", target: "/org/update", token: owner, body: map[string]string{"organization_name": "Audit Renamed", "email": "owner@audit.test", "password": pw}}, 200)
	ok(call{method: "POST", target: "/org/transfer", token: owner, body: map[string]string{"admin_id": xID}}, 200)
	ok(call{method: "POST", target: "/admin/login", body: map[string]string{"email": "x@audit.test", "password": "WrongPassword1"}}, 401)
	owner = ok(call{method: "PUT", target: "/admin/password", token: owner, body: map[string]string{"current_password": pw, "new_password": pw + "!"}}, 200).body["access_token"].(string)
	ok(call{method: "POST", target: "/admin/logout", token: owner}, 200)
	inv3 := ok(call{method: "POST", target: "/org/invitations", token: x, body: map[string]string{"email": "z@audit.test"}}, 201).body
	zr := ok(call{method: "POST", target: "/invitations/accept", body: map[string]string{"token": inv3["token"].(string), "password": pw}}, 200).body
	ok(call{method: "GET", target: "/org/events", token: zr["access_token"].(string)}, 403) // a member may not
	ok(call{method: "DELETE", target: "/org/members/" + zr["admin_id"].(string), token: x}, 200)
	// Refused calls record nothing.
	ok(call{method: "PUT", target: "/org/members/" + xID, token: x, body: map[string]string{"role": "member"}}, 409)
	ok(call{method: "POST", target: "/org/invitations", token: x, body: map[string]string{"email": "x@audit.test"}}, 409)

	want := []string{
		tenancy.EventOrgCreated, tenancy.EventAdminLoggedIn, tenancy.EventMemberInvited, tenancy.EventMemberJoined,
		tenancy.EventMemberRoleChanged, tenancy.EventMemberInvited, tenancy.EventInvitationRevoked, tenancy.EventOrgRenamed,
		tenancy.EventOwnershipTransferred, tenancy.EventAdminLoginFailed, tenancy.EventAdminPasswordChanged, tenancy.EventAdminLoggedOut,
		tenancy.EventMemberInvited, tenancy.EventMemberJoined, tenancy.EventMemberRemoved,
	}
	var all []map[string]any
	require.Eventually(t, func() bool { // the failed login's event is recorded aside
		r := do(t, e.h, call{method: "GET", target: "/org/events?limit=100", token: x})
		all = nil
		for _, ev := range r.body["events"].([]any) {
			all = append(all, ev.(map[string]any))
		}
		return len(all) == len(want)
	}, 10*time.Second, 20*time.Millisecond, "one event per acknowledged operation")
	types := make([]string, len(all))
	for i, ev := range all {
		types[i] = ev["type"].(string)
	}
	// The failed login is recorded aside: it may come after the
	// password change.
	if types[9] != tenancy.EventAdminLoginFailed && types[10] == tenancy.EventAdminLoginFailed {
		want[9], want[10] = want[10], want[9]
	}
	assert.Equal(t, want, types)
	for i, ev := range all {
		assert.Equal(t, float64(i+1), ev["seq"], "numbered in order")
		assert.Equal(t, org["id"], ev["org_id"])
		assert.Regexp(t, `^evt_[0-9a-f]{24}$`, ev["id"])
		_, err := time.Parse(time.RFC3339, ev["at"].(string))
		assert.NoError(t, err, "at is RFC 3339")
		assert.Contains(t, ev, "actor_id")
		assert.IsType(t, map[string]any{}, ev["data"])
	}
	assert.Equal(t, map[string]any{
		"organization_name": "Audit Co", "organization_identifier": "audit-co", "tenant_collection": "tenant_audit_co",
		"admin_id": org["admin_email"].(string)[:0] + all[0]["actor_id"].(string), "admin_email": "owner@audit.test",
	}, all[0]["data"])
	renamed := all[7]["data"].(map[string]any)
	assert.Equal(t, "Audit Co", renamed["previous_name"])
	assert.Equal(t, "tenant_audit_renamed", renamed["tenant_collection"])
	assert.Equal(t, float64(1), renamed["documents_migrated"], "the metadata document")
	assert.Equal(t, xID, all[8]["data"].(map[string]any)["admin_id"], "the new primary owner")

	// Pages of 4, following next_after, give the same events.
	var paged []any
	after := ""
	for {
		r := ok(call{method: "GET", target: "/org/events?limit=4" + after, token: x}, 200)
		paged = append(paged, r.body["events"].([]any)...)
		if r.body["next_after"] == nil {
			break
		}
		after = "&after=" + strconv.FormatFloat(r.body["next_after"].(float64), 'f', 0, 64)
	}
	require.Len(t, paged, len(all))
	for i := range paged {
		assert.Equal(t, all[i]["id"], paged[i].(map[string]any)["id"])
	}

	for _, bad := range []string{"?after=-1", "?after=x", "?limit=0", "?limit=101"} {
		r := ok(call{method: "GET", target: "/org/events" + bad, token: x, invalidRequest: true}, 400)
		assert.Contains(t, fmt.Sprint(r.body["errors"]), map[string]string{"?a": "after", "?l": "limit"}[bad[:2]], bad)
	}
	ok(call{method: "GET", target: "/org/events", invalidRequest: true}, 401)
}
