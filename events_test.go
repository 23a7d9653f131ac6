package tenancy_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/memstore"
	"github.com/tenancy/tenancy/mongotest"
)

// allEvents returns every event the store holds, by organization and
// number. No test here delivers events, so every organization with
// events is behind its cursor.
func allEvents(t *testing.T, store tenancy.Store) []*tenancy.Event {
	t.Helper()
	orgs, err := store.UndeliveredEventOrgs(t.Context())
	require.NoError(t, err)
	var out []*tenancy.Event
	for _, org := range orgs {
		evs, err := store.Events(t.Context(), org, 0, 10_000)
		require.NoError(t, err)
		out = append(out, evs...)
	}
	return out
}

func countEvents(t *testing.T, store tenancy.Store, typ string) int {
	n := 0
	for _, ev := range allEvents(t, store) {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// eventCase is an operation whose event the crash test checks: setup
// prepares it, op runs it, and tookEffect tells from the store alone
// whether it took effect.
type eventCase struct {
	typ        string
	setup      func(t *testing.T, m *tenancy.Manager)
	op         func(t *testing.T, m *tenancy.Manager) error
	tookEffect func(t *testing.T, store tenancy.Store) bool
}

// eventCases returns a fresh case of each operation, by name.
func eventCases() map[string]func() eventCase {
	orgA := func(t *testing.T, m *tenancy.Manager) *tenancy.Claims {
		createOrg(t, m, "Org A", "owner@a.com")
		_, owner := authed(t, m, "owner@a.com", pw, "")
		return owner
	}
	member := func(t *testing.T, m *tenancy.Manager, owner *tenancy.Claims, email string) *tenancy.Claims {
		_, err := m.AcceptInvitation(t.Context(), invite(t, m, owner, email, tenancy.RoleMember), pw)
		require.NoError(t, err)
		_, c := authed(t, m, email, pw, "Org A")
		return c
	}
	orgOf := func(t *testing.T, store tenancy.Store, id tenancy.OrgID) *tenancy.Org {
		org, err := store.OrgByID(t.Context(), id)
		require.NoError(t, err)
		return org
	}
	return map[string]func() eventCase{
		"create": func() eventCase {
			return eventCase{
				typ:   tenancy.EventOrgCreated,
				setup: func(t *testing.T, m *tenancy.Manager) {},
				op: func(t *testing.T, m *tenancy.Manager) error {
					_, err := m.CreateOrg(t.Context(), tenancy.CreateOrgParams{Name: "Org B", AdminEmail: "owner@b.com", AdminPassword: pw})
					return err
				},
				tookEffect: func(t *testing.T, store tenancy.Store) bool {
					org, err := store.OrgByIdentifier(t.Context(), "org-b")
					return err == nil && org.State == tenancy.OrgActive
				},
			}
		},
		"rename": func() eventCase {
			var owner *tenancy.Claims
			return eventCase{
				typ:   tenancy.EventOrgRenamed,
				setup: func(t *testing.T, m *tenancy.Manager) { owner = orgA(t, m) },
				op: func(t *testing.T, m *tenancy.Manager) error {
					_, err := m.RenameOrgAs(t.Context(), owner, "Org Z")
					return err
				},
				tookEffect: func(t *testing.T, store tenancy.Store) bool {
					return orgOf(t, store, owner.OrgID).Identifier == "org-z"
				},
			}
		},
		"rename_display": func() eventCase {
			var owner *tenancy.Claims
			return eventCase{
				typ:   tenancy.EventOrgRenamed,
				setup: func(t *testing.T, m *tenancy.Manager) { owner = orgA(t, m) },
				op: func(t *testing.T, m *tenancy.Manager) error {
					_, err := m.RenameOrgAs(t.Context(), owner, "ORG A")
					return err
				},
				tookEffect: func(t *testing.T, store tenancy.Store) bool {
					return orgOf(t, store, owner.OrgID).Name == "ORG A"
				},
			}
		},
		"delete": func() eventCase {
			var owner *tenancy.Claims
			return eventCase{
				typ:   tenancy.EventOrgDeleted,
				setup: func(t *testing.T, m *tenancy.Manager) { owner = orgA(t, m) },
				op:    func(t *testing.T, m *tenancy.Manager) error { return m.DeleteOrgAs(t.Context(), owner) },
				tookEffect: func(t *testing.T, store tenancy.Store) bool {
					_, err := store.OrgByID(t.Context(), owner.OrgID)
					return err != nil
				},
			}
		},
		"invite": func() eventCase {
			var owner *tenancy.Claims
			return eventCase{
				typ:   tenancy.EventMemberInvited,
				setup: func(t *testing.T, m *tenancy.Manager) { owner = orgA(t, m) },
				op: func(t *testing.T, m *tenancy.Manager) error {
					_, _, err := m.Invite(t.Context(), owner, tenancy.InviteParams{Email: "new@a.com"})
					return err
				},
				tookEffect: func(t *testing.T, store tenancy.Store) bool {
					invs, err := store.OrgInvitations(t.Context(), owner.OrgID)
					require.NoError(t, err)
					return len(invs) == 1
				},
			}
		},
		"revoke": func() eventCase {
			var owner *tenancy.Claims
			var id string
			return eventCase{
				typ: tenancy.EventInvitationRevoked,
				setup: func(t *testing.T, m *tenancy.Manager) {
					owner = orgA(t, m)
					inv, _, err := m.Invite(t.Context(), owner, tenancy.InviteParams{Email: "new@a.com"})
					require.NoError(t, err)
					id = inv.ID
				},
				op: func(t *testing.T, m *tenancy.Manager) error { return m.RevokeInvitation(t.Context(), owner, id) },
				tookEffect: func(t *testing.T, store tenancy.Store) bool {
					_, err := store.Invitation(t.Context(), id)
					return err != nil
				},
			}
		},
		"accept": func() eventCase {
			var owner *tenancy.Claims
			var token string
			return eventCase{
				typ: tenancy.EventMemberJoined,
				setup: func(t *testing.T, m *tenancy.Manager) {
					owner = orgA(t, m)
					token = invite(t, m, owner, "new@a.com", tenancy.RoleAdmin)
				},
				op: func(t *testing.T, m *tenancy.Manager) error {
					_, err := m.AcceptInvitation(t.Context(), token, pw)
					return err
				},
				tookEffect: func(t *testing.T, store tenancy.Store) bool {
					admin, err := store.AdminByEmail(t.Context(), "new@a.com")
					if err != nil {
						return false
					}
					_, err = store.Membership(t.Context(), owner.OrgID, admin.ID)
					return err == nil
				},
			}
		},
		"change_role": func() eventCase {
			var owner, x *tenancy.Claims
			return eventCase{
				typ: tenancy.EventMemberRoleChanged,
				setup: func(t *testing.T, m *tenancy.Manager) {
					owner = orgA(t, m)
					x = member(t, m, owner, "x@a.com")
				},
				op: func(t *testing.T, m *tenancy.Manager) error {
					_, err := m.ChangeRole(t.Context(), owner, x.AdminID, tenancy.RoleAdmin)
					return err
				},
				tookEffect: func(t *testing.T, store tenancy.Store) bool {
					mb, err := store.Membership(t.Context(), owner.OrgID, x.AdminID)
					require.NoError(t, err)
					return mb.Role == tenancy.RoleAdmin
				},
			}
		},
		"remove": func() eventCase {
			var owner, x *tenancy.Claims
			return eventCase{
				typ: tenancy.EventMemberRemoved,
				setup: func(t *testing.T, m *tenancy.Manager) {
					owner = orgA(t, m)
					x = member(t, m, owner, "x@a.com")
				},
				op: func(t *testing.T, m *tenancy.Manager) error { return m.RemoveMember(t.Context(), owner, x.AdminID) },
				tookEffect: func(t *testing.T, store tenancy.Store) bool {
					_, err := store.Membership(t.Context(), owner.OrgID, x.AdminID)
					return err != nil
				},
			}
		},
		"transfer": func() eventCase {
			var owner, x *tenancy.Claims
			return eventCase{
				typ: tenancy.EventOwnershipTransferred,
				setup: func(t *testing.T, m *tenancy.Manager) {
					owner = orgA(t, m)
					x = member(t, m, owner, "x@a.com")
				},
				op: func(t *testing.T, m *tenancy.Manager) error {
					_, err := m.TransferOwnership(t.Context(), owner, x.AdminID)
					return err
				},
				tookEffect: func(t *testing.T, store tenancy.Store) bool {
					return orgOf(t, store, owner.OrgID).AdminID == x.AdminID
				},
			}
		},
	}
}

// nopSink takes every event; no test here runs DeliverEvents, so with it
// events are kept, a deleted organization's too.
type nopSink struct{}

func (nopSink) Deliver(context.Context, *tenancy.Event) error { return nil }

var keepEvents = tenancy.WithEventDelivery(tenancy.EventDelivery{Sink: nopSink{}})

// writesOf returns a fault at every store write (and count) the
// operation of c makes, in a run without faults on memstore: the
// steps a crash can come between.
func writesOf(t *testing.T, c eventCase) []fault {
	store := memstore.New()
	c.setup(t, newManager(t, store, cheap, keepEvents))
	counting := &failingStore{testStore: store}
	require.NoError(t, c.op(t, newManager(t, counting, cheap, keepEvents, tenancy.WithOperationLease(crashLease))))
	var faults []fault
	for method, n := range counting.calls {
		if method == "RenewLock" {
			continue // timing, not a step
		}
		for i := 1; i <= n; i++ {
			faults = append(faults, fault{method, i})
		}
	}
	sort.Slice(faults, func(i, j int) bool {
		return fmt.Sprint(faults[i].method, faults[i].nth) < fmt.Sprint(faults[j].method, faults[j].nth)
	})
	return faults
}

// TestEventsSurviveCrashes kills every operation at every store write,
// before and after it takes effect, lets the recovery loop settle it,
// and checks the operation's events: exactly one if it took effect,
// none if it was rolled back. On memstore at every write; on mongostore
// at the writes of the event and of the journal around it.
func TestEventsSurviveCrashes(t *testing.T) {
	t.Parallel()
	type run struct {
		name  string
		f     fault
		after bool
		mongo bool
	}
	cases := eventCases()
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range cases {
			if !yield(n) {
				return
			}
		}
	})
	var runs []run
	for _, name := range names {
		for _, f := range writesOf(t, cases[name]()) {
			for _, after := range []bool{false, true} {
				runs = append(runs, run{name, f, after, false})
				if f.method == "AppendEvent" || f.method == "DeleteOperation" {
					runs = append(runs, run{name, f, after, true})
				}
			}
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 24)
	for _, r := range runs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			kind := "memstore"
			if r.mongo {
				kind = "mongostore"
			}
			t.Run(fmt.Sprintf("%s/%s#%d/after=%v/%s", r.name, r.f.method, r.f.nth, r.after, kind), func(t *testing.T) {
				var store testStore = memstore.New()
				if r.mongo {
					s := newStore(t, mongotest.NewDatabase(t))
					require.NoError(t, s.EnsureIndexes(t.Context()))
					store = s
				}
				c := cases[r.name]()
				var before int
				crashAndRecoverWith(t, store, r.f, r.after, []tenancy.Option{cheap, keepEvents}, func(m *tenancy.Manager) {
					c.setup(t, m)
					before = countEvents(t, store, c.typ)
				}, func(m *tenancy.Manager) error { return c.op(t, m) })
				want := 0
				if c.tookEffect(t, store) {
					want = 1
				}
				assert.Equal(t, want, countEvents(t, store, c.typ)-before, "%s events after the operation (took effect: %v)", c.typ, want == 1)
			})
		})
	}
	wg.Wait()
}

// TestEventsOfEachOperation runs each operation once and reads its
// events back through Manager.Events, in order, with their fields.
func TestEventsOfEachOperation(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		m := newManager(t, store, cheap)
		org := createOrg(t, m, "Org A", "owner@a.com")
		_, owner := authed(t, m, "owner@a.com", pw, "")
		inv, token, err := m.Invite(ctx, owner, tenancy.InviteParams{Email: "x@a.com", Role: tenancy.RoleMember})
		require.NoError(t, err)
		tok, err := m.AcceptInvitation(ctx, token, pw)
		require.NoError(t, err)
		x := tok.AdminID
		_, err = m.ChangeRole(ctx, owner, x, tenancy.RoleAdmin)
		require.NoError(t, err)
		_, err = m.TransferOwnership(ctx, owner, x)
		require.NoError(t, err)
		inv2, _, err := m.Invite(ctx, owner, tenancy.InviteParams{Email: "y@a.com"})
		require.NoError(t, err)
		require.NoError(t, m.RevokeInvitation(ctx, owner, inv2.ID))
		res, err := m.RenameOrgAs(ctx, owner, "Org Z")
		require.NoError(t, err)
		_, err = m.LoginTo(ctx, "x@a.com", "WrongPassword1", "")
		require.ErrorIs(t, err, tenancy.ErrUnauthenticated)
		_, err = m.LoginTo(ctx, "nobody@a.com", "WrongPassword1", "")
		require.ErrorIs(t, err, tenancy.ErrUnauthenticated)
		require.NoError(t, m.RemoveMember(ctx, owner, owner.AdminID), "the old primary owner leaves")

		_, xc := authed(t, m, "x@a.com", pw, "")
		var got []*tenancy.Event
		require.Eventually(t, func() bool { // the failed login is recorded aside
			got = nil
			var after int64
			for {
				page, next, err := m.Events(ctx, xc, after, 3)
				require.NoError(t, err)
				got = append(got, page...)
				if next == 0 {
					break
				}
				after = next
			}
			return len(got) == 12
		}, 5*time.Second, 10*time.Millisecond)
		types := make([]string, len(got))
		for i, ev := range got {
			types[i] = ev.Type
			assert.Equal(t, int64(i+1), ev.Seq)
			assert.Equal(t, org.ID, ev.OrgID)
			assert.NotEmpty(t, ev.ID)
			assert.False(t, ev.At.IsZero())
		}
		// The failed login is recorded aside: it may come anywhere after the rename.
		i := slices.Index(types, tenancy.EventAdminLoginFailed)
		require.GreaterOrEqual(t, i, 9, "%v", types)
		failed := got[i]
		got = slices.Delete(got, i, i+1)
		types = slices.Delete(types, i, i+1)
		assert.Equal(t, []string{
			tenancy.EventOrgCreated, tenancy.EventAdminLoggedIn, tenancy.EventMemberInvited, tenancy.EventMemberJoined,
			tenancy.EventMemberRoleChanged, tenancy.EventOwnershipTransferred, tenancy.EventMemberInvited,
			tenancy.EventInvitationRevoked, tenancy.EventOrgRenamed, tenancy.EventMemberRemoved, tenancy.EventAdminLoggedIn,
		}, types)
		assert.Equal(t, map[string]any{"admin_id": string(x), "email": "x@a.com", "reason": "wrong_password"}, failed.Data)

		created := got[0]
		assert.Equal(t, org.AdminID, created.ActorID)
		assert.Equal(t, map[string]any{
			"organization_name": "Org A", "organization_identifier": "org-a", "tenant_collection": "tenant_org_a",
			"admin_id": string(org.AdminID), "admin_email": "owner@a.com",
		}, created.Data)
		assert.Equal(t, inv.ID, got[2].Data["invitation_id"])
		joined := got[3]
		assert.Equal(t, x, joined.ActorID)
		assert.Equal(t, true, joined.Data["new_account"])
		assert.Equal(t, "member", joined.Data["role"])
		assert.Equal(t, map[string]any{"admin_id": string(x), "email": "x@a.com", "previous_role": "member", "role": "admin"}, got[4].Data)
		assert.Equal(t, map[string]any{
			"previous_admin_id": string(owner.AdminID), "previous_admin_email": "owner@a.com", "admin_id": string(x), "admin_email": "x@a.com",
		}, got[5].Data)
		renamed := got[8]
		assert.Equal(t, owner.AdminID, renamed.ActorID)
		assert.Equal(t, map[string]any{
			"previous_name": "Org A", "organization_name": "Org Z", "previous_identifier": "org-a", "organization_identifier": "org-z",
			"previous_collection": "tenant_org_a", "tenant_collection": "tenant_org_z", "documents_migrated": res.DocumentsMigrated,
		}, renamed.Data)
		assert.Equal(t, map[string]any{"admin_id": string(owner.AdminID), "email": "owner@a.com", "role": "owner"}, got[9].Data)

		// Members may not read them.
		inv3, token3, err := m.Invite(ctx, xc, tenancy.InviteParams{Email: "m@a.com"})
		require.NoError(t, err)
		_ = inv3
		_, err = m.AcceptInvitation(ctx, token3, pw)
		require.NoError(t, err)
		_, mc := authed(t, m, "m@a.com", pw, "")
		_, _, err = m.Events(ctx, mc, 0, 10)
		assert.ErrorIs(t, err, tenancy.ErrForbidden)
		_, _, err = m.Events(ctx, xc, -1, 10)
		assert.ErrorIs(t, err, tenancy.ErrInvalid)
		_, _, err = m.Events(ctx, xc, 0, tenancy.MaxListLimit+1)
		assert.ErrorIs(t, err, tenancy.ErrInvalid)

		// Without delivery, the events go with their organization.
		require.NoError(t, m.DeleteOrgAs(ctx, xc))
		assert.NotEmpty(t, allEvents(t, store), "deleted by recovery, not by the request")
		rep, err := m.RecoverPending(ctx)
		require.NoError(t, err)
		assert.Equal(t, 1, rep.EventsDeleted)
		assert.Empty(t, allEvents(t, store))
		pending, err := store.PendingEventOrgs(ctx)
		require.NoError(t, err)
		assert.Empty(t, pending)
	})
}

// recordingSink takes events after refusing the first attempts of each,
// or every attempt of the events refuse names, and notes how many
// deliveries ran at once.
type recordingSink struct {
	mu       sync.Mutex
	failures int
	refuse   map[string]bool // event types never taken
	attempts map[string]int
	taken    []*tenancy.Event
	inFlight int
	most     int
}

func (s *recordingSink) Deliver(ctx context.Context, ev *tenancy.Event) error {
	s.mu.Lock()
	s.inFlight++
	s.most = max(s.most, s.inFlight)
	s.attempts[ev.ID]++
	n := s.attempts[ev.ID]
	s.mu.Unlock()
	time.Sleep(time.Millisecond) // a delivery takes time: overlaps would show
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight--
	if n <= s.failures || s.refuse[ev.Type] {
		return fmt.Errorf("attempt %d refused", n)
	}
	s.taken = append(s.taken, ev)
	return nil
}

func (s *recordingSink) takenOf(org tenancy.OrgID) []*tenancy.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*tenancy.Event
	for _, ev := range s.taken {
		if ev.OrgID == org {
			out = append(out, ev)
		}
	}
	return out
}

// TestDeliverEvents runs DeliverEvents in two Managers over one store,
// as two serving processes would, with a sink that refuses the first two
// attempts of every event: one delivers at a time, every event arrives
// in order per organization, and a deleted organization's events go once
// its organization.deleted event was taken.
func TestDeliverEvents(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		sink := &recordingSink{failures: 2, attempts: map[string]int{}}
		delivery := tenancy.WithEventDelivery(tenancy.EventDelivery{Sink: sink, FirstRetry: 5 * time.Millisecond, MaxRetry: 20 * time.Millisecond})
		ctx, stop := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		for range 2 {
			m := newManager(t, store, cheap, delivery, tenancy.WithOperationLease(crashLease))
			wg.Go(func() { assert.ErrorIs(t, m.DeliverEvents(ctx), context.Canceled) })
		}
		m := newManager(t, store, cheap, delivery)
		var orgs []*tenancy.Org
		for i := range 3 {
			org := createOrg(t, m, fmt.Sprintf("Org %d", i), fmt.Sprintf("owner@%d.test", i))
			orgs = append(orgs, org)
			_, owner := authed(t, m, fmt.Sprintf("owner@%d.test", i), pw, "")
			for j := range 3 {
				invite(t, m, owner, fmt.Sprintf("m%d@%d.test", j, i), tenancy.RoleMember)
			}
			if i == 2 {
				require.NoError(t, m.DeleteOrgAs(t.Context(), owner))
			}
		}
		require.Eventually(t, func() bool {
			return len(sink.takenOf(orgs[0].ID)) == 5 && len(sink.takenOf(orgs[1].ID)) == 5 && len(sink.takenOf(orgs[2].ID)) == 6
		}, 20*time.Second, 10*time.Millisecond, "every event delivered")
		for i, org := range orgs {
			for j, ev := range sink.takenOf(org.ID) {
				assert.Equal(t, int64(j+1), ev.Seq, "org %d: in order, once each", i)
			}
		}
		sink.mu.Lock()
		assert.Equal(t, 1, sink.most, "one delivery at a time, of both processes")
		sink.mu.Unlock()
		require.Eventually(t, func() bool {
			evs, err := store.Events(t.Context(), orgs[2].ID, 0, 10)
			require.NoError(t, err)
			return len(evs) == 0
		}, 5*time.Second, 10*time.Millisecond, "the deleted organization's events go after delivery")
		evs, err := store.Events(t.Context(), orgs[0].ID, 0, 10)
		require.NoError(t, err)
		assert.Len(t, evs, 5, "the others stay: they are the audit log")
		require.Eventually(t, func() bool {
			pending, err := store.PendingEventOrgs(t.Context())
			require.NoError(t, err)
			return len(pending) == 0
		}, 5*time.Second, 10*time.Millisecond, "nothing left to deliver")
		stop()
		wg.Wait()
	})
}

// TestDeliverEventsGivesUp checks that an event refused for longer than
// GiveUpAfter is dropped, and the organization's later events go on.
func TestDeliverEventsGivesUp(t *testing.T) {
	store := memstore.New()
	sink := &recordingSink{attempts: map[string]int{}, refuse: map[string]bool{tenancy.EventMemberInvited: true}}
	var dropped sync.Map
	m := newManager(t, store, cheap, tenancy.WithEventDelivery(tenancy.EventDelivery{
		Sink: sink, FirstRetry: 5 * time.Millisecond, MaxRetry: 10 * time.Millisecond, GiveUpAfter: 100 * time.Millisecond,
	}), tenancy.WithHooks(tenancy.Hooks{EventDelivery: func(result string, lag time.Duration) {
		if result == "dropped" {
			dropped.Store(lag, true)
		}
	}}))
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	go func() { _ = m.DeliverEvents(ctx) }()
	org := createOrg(t, m, "Org A", "owner@a.test")
	_, owner := authed(t, m, "owner@a.test", pw, "")
	invite(t, m, owner, "x@a.test", tenancy.RoleMember)
	_, err := m.LoginTo(t.Context(), "owner@a.test", pw, "")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(sink.takenOf(org.ID)) == 3 }, 10*time.Second, 10*time.Millisecond)
	types := []string{}
	for _, ev := range sink.takenOf(org.ID) {
		types = append(types, ev.Type)
	}
	assert.Equal(t, []string{tenancy.EventOrgCreated, tenancy.EventAdminLoggedIn, tenancy.EventAdminLoggedIn}, types, "the refused invitation was skipped")
	n := 0
	dropped.Range(func(any, any) bool { n++; return true })
	assert.Equal(t, 1, n, "Hooks.EventDelivery was told it was dropped")
}

// TestDeliverEventsSurvivesLockFailures: a failure to take the delivery
// lease that is not another holder (the database failing) pauses
// delivery, which then goes on.
func TestDeliverEventsSurvivesLockFailures(t *testing.T) {
	store := memstore.New()
	sink := &recordingSink{attempts: map[string]int{}}
	delivery := tenancy.WithEventDelivery(tenancy.EventDelivery{Sink: sink, FirstRetry: 5 * time.Millisecond})
	m := newManager(t, store, cheap, delivery)
	org := createOrg(t, m, "Org A", "owner@a.test")
	failing := &failingStore{testStore: store, method: "LockOrg", nth: 1}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- newManager(t, failing, cheap, delivery, tenancy.WithOperationLease(tenancy.MinOperationLease)).DeliverEvents(ctx)
	}()
	require.Eventually(t, func() bool { return len(sink.takenOf(org.ID)) == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.True(t, failing.hasFailed())
	stop()
	assert.ErrorIs(t, <-done, context.Canceled)
}

// TestDeletedOrgEventsGoWhenTheirDeletionFailsOnce: the deletion of a
// deleted organization's events after its last delivery is tried again
// until it succeeds.
func TestDeletedOrgEventsGoWhenTheirDeletionFailsOnce(t *testing.T) {
	store := memstore.New()
	sink := &recordingSink{attempts: map[string]int{}}
	delivery := tenancy.WithEventDelivery(tenancy.EventDelivery{Sink: sink, FirstRetry: 5 * time.Millisecond, MaxRetry: 10 * time.Millisecond})
	m := newManager(t, store, cheap, delivery)
	createOrg(t, m, "Org A", "owner@a.test")
	_, owner := authed(t, m, "owner@a.test", pw, "")
	require.NoError(t, m.DeleteOrgAs(t.Context(), owner))
	failing := &failingStore{testStore: store, method: "DeleteEvents", nth: 1}
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	go func() { _ = newManager(t, failing, cheap, delivery).DeliverEvents(ctx) }()
	require.Eventually(t, func() bool {
		evs, err := store.Events(t.Context(), owner.OrgID, 0, 10)
		require.NoError(t, err)
		return failing.hasFailed() && len(evs) == 0
	}, 10*time.Second, 10*time.Millisecond, "the events go after all")
	taken := sink.takenOf(owner.OrgID)
	require.NotEmpty(t, taken)
	assert.Equal(t, tenancy.EventOrgDeleted, taken[len(taken)-1].Type, "organization.deleted last (delivered again: at least once)")
}

// TestLogoutAndLoginEvents: a logout tried again records its event once,
// and a login whose event cannot be recorded fails.
func TestLogoutAndLoginEvents(t *testing.T) {
	store := memstore.New()
	m := newManager(t, store, cheap)
	createOrg(t, m, "Org A", "owner@a.test")
	_, owner := authed(t, m, "owner@a.test", pw, "")
	require.NoError(t, m.Logout(t.Context(), owner))
	require.NoError(t, m.Logout(t.Context(), owner), "again, as a client whose answer was lost")
	assert.Equal(t, 1, countEvents(t, store, tenancy.EventAdminLoggedOut))

	// A logout that fails after its event leaves the token working, so
	// that the client can try again; the event stays one.
	tok, _ := authed(t, m, "owner@a.test", pw, "")
	claims, err := m.AuthenticateToken(t.Context(), tok.AccessToken)
	require.NoError(t, err)
	failingRevoke := &failingStore{testStore: store, method: "RevokeToken", nth: 1}
	require.ErrorIs(t, newManager(t, failingRevoke, cheap).Logout(t.Context(), claims), errInjected)
	claims, err = m.AuthenticateToken(t.Context(), tok.AccessToken)
	require.NoError(t, err, "the token still works, and reaches Logout again")
	require.NoError(t, m.Logout(t.Context(), claims))
	_, err = m.AuthenticateToken(t.Context(), tok.AccessToken)
	require.ErrorIs(t, err, tenancy.ErrUnauthenticated)
	assert.Equal(t, 2, countEvents(t, store, tenancy.EventAdminLoggedOut), "one per token")

	failing := &failingStore{testStore: store, method: "AppendEvent", nth: 1}
	_, err = newManager(t, failing, cheap).LoginTo(t.Context(), "owner@a.test", pw, "")
	assert.ErrorIs(t, err, errInjected, "no login without its event")
	assert.Equal(t, 2, countEvents(t, store, tenancy.EventAdminLoggedIn), "the two logins before only")
}

// TestEventsAfterDeletionGoToo: without delivery, an event that lands on
// an organization after its deletion (a logout with a token only
// verified, as RequireValidToken does) is deleted by recovery too.
func TestEventsAfterDeletionGoToo(t *testing.T) {
	store := memstore.New()
	m := newManager(t, store, cheap)
	createOrg(t, m, "Org A", "owner@a.test")
	tok, owner := authed(t, m, "owner@a.test", pw, "")
	require.NoError(t, m.DeleteOrgAs(t.Context(), owner))
	_, err := m.RecoverPending(t.Context())
	require.NoError(t, err)
	require.Empty(t, allEvents(t, store))

	claims, err := m.VerifyToken(tok.AccessToken)
	require.NoError(t, err)
	require.NoError(t, m.Logout(t.Context(), claims))
	require.Len(t, allEvents(t, store), 1, "the logout's event landed on the gone organization")
	rep, err := m.RecoverPending(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, rep.EventsDeleted)
	assert.Empty(t, allEvents(t, store))
}
