package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
)

func sampleEvent(org tenancy.OrgID, typ string, i int) *tenancy.Event {
	return &tenancy.Event{
		ID: "evt_" + newID(), Type: typ, OrgID: org, ActorID: tenancy.AdminID(newID()), At: now(),
		Data: map[string]any{"i": int64(i), "name": fmt.Sprint("n", i), "flag": i%2 == 0, "none": nil},
	}
}

func testAppendAndPage(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	a, b := tenancy.OrgID(newID()), tenancy.OrgID(newID())
	var want []*tenancy.Event
	for i := range 7 {
		ev := sampleEvent(a, tenancy.EventMemberInvited, i)
		require.NoError(t, s.AppendEvent(ctx, ev, false))
		assert.Equal(t, int64(i+1), ev.Seq, "numbered from 1 in order")
		want = append(want, ev)
		require.NoError(t, s.AppendEvent(ctx, sampleEvent(b, tenancy.EventAdminLoggedIn, i), false))
	}
	again := *want[3]
	again.Seq = 0
	require.NoError(t, s.AppendEvent(ctx, &again, false), "appending an id again")
	got, err := s.Events(ctx, a, 0, 100)
	require.NoError(t, err)
	require.Len(t, got, 7, "an id is recorded once")
	for i, ev := range got {
		assert.Equal(t, want[i].ID, ev.ID)
		assert.Equal(t, int64(i+1), ev.Seq)
		assert.Equal(t, a, ev.OrgID)
		assert.Equal(t, want[i].ActorID, ev.ActorID)
		assert.Equal(t, tenancy.EventMemberInvited, ev.Type)
		assert.True(t, want[i].At.Equal(ev.At), "at %v, want %v", ev.At, want[i].At)
		assert.Equal(t, want[i].Data, ev.Data, "data round trip")
	}
	page, err := s.Events(ctx, a, 2, 3)
	require.NoError(t, err)
	require.Len(t, page, 3)
	assert.Equal(t, []int64{3, 4, 5}, []int64{page[0].Seq, page[1].Seq, page[2].Seq})
	page, err = s.Events(ctx, a, 7, 3)
	require.NoError(t, err)
	assert.Empty(t, page, "past the last")
	page, err = s.Events(ctx, tenancy.OrgID(newID()), 0, 3)
	require.NoError(t, err)
	assert.Empty(t, page, "an organization without events")

	require.NoError(t, s.DeleteEvents(ctx, a))
	require.NoError(t, s.DeleteEvents(ctx, a), "deleting twice")
	page, err = s.Events(ctx, a, 0, 100)
	require.NoError(t, err)
	assert.Empty(t, page)
	page, err = s.Events(ctx, b, 0, 100)
	require.NoError(t, err)
	assert.Len(t, page, 7, "another organization's events stay")
	ev := sampleEvent(a, tenancy.EventOrgCreated, 0)
	require.NoError(t, s.AppendEvent(ctx, ev, false))
	assert.Equal(t, int64(1), ev.Seq, "numbering starts again after a deletion")
}

func testConcurrentAppendEvent(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	org := tenancy.OrgID(newID())
	const n = 24
	events := make([]*tenancy.Event, n)
	var wg sync.WaitGroup
	for i := range n {
		events[i] = sampleEvent(org, tenancy.EventAdminLoggedIn, i)
		wg.Go(func() {
			assert.NoError(t, s.AppendEvent(ctx, events[i], true))
			// The same event again, as recovery would.
			c := *events[i]
			assert.NoError(t, s.AppendEvent(ctx, &c, true))
		})
	}
	wg.Wait()
	got, err := s.Events(ctx, org, 0, 2*n)
	require.NoError(t, err)
	require.Len(t, got, n, "each event once")
	seen := map[string]bool{}
	for i, ev := range got {
		assert.Equal(t, int64(i+1), ev.Seq, "no gap, no repeat")
		seen[ev.ID] = true
	}
	for _, ev := range events {
		assert.True(t, seen[ev.ID], "event %s recorded", ev.ID)
	}
}

func testEventDelivery(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	a, b, c := tenancy.OrgID(newID()), tenancy.OrgID(newID()), tenancy.OrgID(newID())
	pending, err := s.PendingEventOrgs(ctx)
	require.NoError(t, err)
	assert.Empty(t, pending)
	require.NoError(t, s.AppendEvent(ctx, sampleEvent(a, tenancy.EventOrgCreated, 1), true))
	require.NoError(t, s.AppendEvent(ctx, sampleEvent(a, tenancy.EventAdminLoggedIn, 2), true))
	require.NoError(t, s.AppendEvent(ctx, sampleEvent(b, tenancy.EventOrgCreated, 1), false))
	require.NoError(t, s.AppendEvent(ctx, sampleEvent(c, tenancy.EventOrgCreated, 1), true))
	pending, err = s.PendingEventOrgs(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, []tenancy.OrgID{a, c}, pending, "marked by pending appends only")

	cursor, err := s.EventCursor(ctx, a)
	require.NoError(t, err)
	assert.Zero(t, cursor)
	require.NoError(t, s.SetEventCursor(ctx, a, 2))
	require.NoError(t, s.SetEventCursor(ctx, c, 1))
	cursor, err = s.EventCursor(ctx, a)
	require.NoError(t, err)
	assert.Equal(t, int64(2), cursor)

	require.NoError(t, s.MarkEventsPending(ctx, a, false))
	require.NoError(t, s.MarkEventsPending(ctx, a, false), "unmarking twice")
	pending, err = s.PendingEventOrgs(ctx)
	require.NoError(t, err)
	assert.Equal(t, []tenancy.OrgID{c}, pending)
	require.NoError(t, s.MarkEventsPending(ctx, a, true))
	require.NoError(t, s.MarkEventsPending(ctx, a, true), "marking twice")
	pending, err = s.PendingEventOrgs(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, []tenancy.OrgID{a, c}, pending)

	undelivered, err := s.UndeliveredEventOrgs(ctx)
	require.NoError(t, err)
	assert.Equal(t, []tenancy.OrgID{b}, undelivered, "b's event is after its cursor; a and c are caught up")

	require.NoError(t, s.DeleteEvents(ctx, a))
	pending, err = s.PendingEventOrgs(ctx)
	require.NoError(t, err)
	assert.Equal(t, []tenancy.OrgID{c}, pending, "deleting the events removes the mark")
	cursor, err = s.EventCursor(ctx, a)
	require.NoError(t, err)
	assert.Zero(t, cursor, "and the cursor")
}

func testJournalEvent(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	org := tenancy.OrgID(newID())
	ev := sampleEvent(org, tenancy.EventMemberRemoved, 3)
	require.NoError(t, s.PutOperation(ctx, &tenancy.Operation{OrgID: org, Kind: tenancy.OpRemoveMember, AdminID: tenancy.AdminID(newID()), Started: now(), Event: ev}))
	ops, err := s.Operations(ctx)
	require.NoError(t, err)
	require.Len(t, ops, 1)
	got := ops[0].Event
	require.NotNil(t, got, "the entry keeps its event")
	assert.Equal(t, ev.ID, got.ID)
	assert.Equal(t, ev.Type, got.Type)
	assert.Equal(t, ev.OrgID, got.OrgID)
	assert.Equal(t, ev.ActorID, got.ActorID)
	assert.True(t, ev.At.Equal(got.At))
	assert.Equal(t, ev.Data, got.Data)
	got.Data["i"] = int64(99)
	ops, err = s.Operations(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(3), ops[0].Event.Data["i"], "the store returns copies")
}
