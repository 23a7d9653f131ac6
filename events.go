package tenancy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Types of Event. The data of each is listed with it; names, emails and
// roles are as they are after the event.
const (
	// EventOrgCreated: organization_name, organization_identifier,
	// tenant_collection, admin_id, admin_email.
	EventOrgCreated = "organization.created"
	// EventOrgRenamed: previous_name, organization_name,
	// previous_identifier, organization_identifier, previous_collection,
	// tenant_collection, documents_migrated.
	EventOrgRenamed = "organization.renamed"
	// EventOrgDeleted: organization_name, organization_identifier,
	// tenant_collection.
	EventOrgDeleted = "organization.deleted"
	// EventOwnershipTransferred: previous_admin_id, previous_admin_email,
	// admin_id, admin_email.
	EventOwnershipTransferred = "organization.ownership_transferred"
	// EventMemberInvited: invitation_id, email, role, expires_at.
	EventMemberInvited = "member.invited"
	// EventMemberJoined: admin_id, email, role, invitation_id,
	// new_account (whether accepting created the account).
	EventMemberJoined = "member.joined"
	// EventMemberRoleChanged: admin_id, email, previous_role, role.
	EventMemberRoleChanged = "member.role_changed"
	// EventMemberRemoved: admin_id, email, role (the role it had).
	EventMemberRemoved = "member.removed"
	// EventInvitationRevoked: invitation_id, email, role.
	EventInvitationRevoked = "invitation.revoked"
	// EventAdminLoggedIn: admin_id, email, role, method ("password", or
	// "switch" for Manager.SwitchOrg).
	EventAdminLoggedIn = "admin.logged_in"
	// EventAdminLoginFailed, for accounts that exist only, in their home
	// organization: admin_id, email, reason ("wrong_password").
	EventAdminLoginFailed = "admin.login_failed"
	// EventAdminPasswordChanged: admin_id, email.
	EventAdminPasswordChanged = "admin.password_changed"
	// EventAdminLoggedOut: admin_id, email, token_id (the jti revoked).
	EventAdminLoggedOut = "admin.logged_out"
)

// Event is something that happened to an organization: its audit log
// (Manager.Events) and what webhooks deliver. An operation's event is
// recorded once it has taken effect, as a step of the operation: an
// operation that was acknowledged has its event, one rolled back has
// none, and a crash in between records it once (by ID).
type Event struct {
	// ID identifies the event: "evt_" and 24 hex digits. It is fixed
	// when the operation starts, so recovery records the same event.
	ID string
	// Seq numbers the organization's events from 1, in the order they
	// were recorded; Manager.Events pages by it.
	Seq  int64
	Type string
	// OrgID is the organization the event belongs to.
	OrgID OrgID
	// ActorID is the account that acted ("" when none did, as for a
	// deletion by DeleteOrg, which names no caller); the invitee for
	// member.joined.
	ActorID AdminID
	// At is when the event was recorded (milliseconds, UTC).
	At time.Time
	// Data holds what the event is about (see the types): values are
	// strings, int64, bool or nil.
	Data map[string]any
}

// eventJSON is the wire form of an Event, in webhooks and the audit log.
type eventJSON struct {
	ID      string         `json:"id"`
	Seq     int64          `json:"seq"`
	Type    string         `json:"type"`
	OrgID   OrgID          `json:"org_id"`
	ActorID *AdminID       `json:"actor_id"`
	At      string         `json:"at"`
	Data    map[string]any `json:"data"`
}

// timeFormat is RFC 3339 with milliseconds, as events and invitations
// are written.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// MarshalJSON encodes the event as webhooks and the audit log send it:
// {"id","seq","type","org_id","actor_id" (null when none),"at" (RFC 3339),"data"}.
func (e *Event) MarshalJSON() ([]byte, error) {
	w := eventJSON{ID: e.ID, Seq: e.Seq, Type: e.Type, OrgID: e.OrgID, At: e.At.UTC().Format(timeFormat), Data: e.Data}
	if e.ActorID != "" {
		a := e.ActorID
		w.ActorID = &a
	}
	if w.Data == nil {
		w.Data = map[string]any{}
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes what MarshalJSON encodes. Numbers in Data come
// back as float64, as encoding/json decodes them.
func (e *Event) UnmarshalJSON(b []byte) error {
	var w eventJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	at, err := time.Parse(time.RFC3339Nano, w.At)
	if err != nil {
		return fmt.Errorf("event %s: at: %w", w.ID, err)
	}
	*e = Event{ID: w.ID, Seq: w.Seq, Type: w.Type, OrgID: w.OrgID, At: at, Data: w.Data}
	if w.ActorID != nil {
		e.ActorID = *w.ActorID
	}
	return nil
}

// EventStore keeps each organization's events in order, and what their
// delivery (Manager.DeliverEvents) needs: which organizations have
// events to deliver, and how far delivery got.
// Store's rules on concurrency, contexts and errors apply.
type EventStore interface {
	// AppendEvent records ev after the last event of ev.OrgID, setting
	// ev.Seq to the next number. It is idempotent by ev.ID: if the
	// organization has an event with that id, it records nothing (and
	// may leave ev.Seq 0). Concurrent appends get distinct numbers, with
	// no gaps: the store decides by inserting. With pending, it then
	// marks the organization as having events to deliver
	// (PendingEventOrgs), also when the event was there already.
	AppendEvent(ctx context.Context, ev *Event, pending bool) error
	// Events returns up to limit events of org numbered after after,
	// oldest first. A page must cost no more than its events.
	Events(ctx context.Context, org OrgID, after int64, limit int) ([]*Event, error)
	// DeleteEvents removes the events of org, its delivery cursor and
	// its mark. It succeeds if there are none.
	DeleteEvents(ctx context.Context, org OrgID) error
	// PendingEventOrgs returns the organizations marked as having events
	// to deliver. It must cost no more than its marks: it is read every
	// second.
	PendingEventOrgs(ctx context.Context) ([]OrgID, error)
	// MarkEventsPending marks (pending true) or unmarks org as having
	// events to deliver.
	MarkEventsPending(ctx context.Context, org OrgID, pending bool) error
	// EventCursor returns the number of the last event of org that was
	// delivered (0: none).
	EventCursor(ctx context.Context, org OrgID) (int64, error)
	// SetEventCursor records that org's events up to seq were delivered.
	SetEventCursor(ctx context.Context, org OrgID, seq int64) error
	// UndeliveredEventOrgs returns the organizations whose last recorded
	// event is after their cursor, marked or not: what a crash between
	// an append and its mark left. It may read every organization's
	// events position; it is called rarely.
	UndeliveredEventOrgs(ctx context.Context) ([]OrgID, error)
}

// newEvent returns an event of typ about org, by actor ("" for none),
// with a new id, stamped now.
func (m *Manager) newEvent(typ string, org OrgID, actor AdminID, data map[string]any) *Event {
	now := m.stamp()
	return &Event{ID: "evt_" + newObjectID(now), Type: typ, OrgID: org, ActorID: actor, At: now, Data: data}
}

// record appends ev to its organization's events. The caller has made
// the change ev tells of; for a journaled operation, the entry that
// holds ev is still in the journal, so that recovery records ev if this
// fails.
func (m *Manager) record(ctx context.Context, ev *Event) error {
	return m.recordAt(ctx, ev, m.stamp())
}

// recordAt is record, stamping ev with at.
func (m *Manager) recordAt(ctx context.Context, ev *Event, at time.Time) error {
	if ev == nil {
		return nil
	}
	c := *ev
	c.At = at
	// Without delivery, only a deletion marks its organization: recovery
	// then deletes the events (purgeDeleted), away from the request.
	pending := m.delivery.Sink != nil || ev.Type == EventOrgDeleted
	if err := m.events.AppendEvent(ctx, &c, pending); err != nil {
		return fmt.Errorf("record event %s (%s): %w", ev.Type, ev.ID, err)
	}
	ev.Seq, ev.At = c.Seq, c.At
	m.eventRecorded(ev.OrgID)
	return nil
}

// recordOne records the event of a change already made and answered
// for (a password change): a failure is logged, not returned, since the
// change stays.
func (m *Manager) recordOne(ctx context.Context, ev *Event) {
	if err := m.recordUnlocked(ctx, ev); err != nil {
		m.log.ErrorContext(ctx, "event not recorded", "type", ev.Type, "org_id", ev.OrgID, "err", err)
	}
}

// recordUnlocked records ev, an event not written under its
// organization's lock (a login, a logout, a password change), which may
// land after the organization's deletion deleted its events: then it
// marks the organization, so that they are deleted again.
func (m *Manager) recordUnlocked(ctx context.Context, ev *Event) error {
	return m.recordUnlockedAt(ctx, ev, m.stamp())
}

// recordUnlockedAt is recordUnlocked, stamping ev with at.
func (m *Manager) recordUnlockedAt(ctx context.Context, ev *Event, at time.Time) error {
	if err := m.recordAt(ctx, ev, at); err != nil {
		return err
	}
	if _, err := m.orgs.OrgByID(ctx, ev.OrgID); errors.Is(err, ErrNotFound) {
		if err := m.events.MarkEventsPending(ctx, ev.OrgID, true); err != nil {
			return fmt.Errorf("mark the events of deleted organization %s: %w", ev.OrgID, err)
		}
	}
	return nil
}

// purgeDeleted deletes, when nothing delivers events, the events of the
// marked organizations that are gone (organization.deleted marks its
// organization), and unmarks the others. It returns how many
// organizations' events it deleted.
func (m *Manager) purgeDeleted(ctx context.Context) (int, error) {
	if m.delivery.Sink != nil {
		return 0, nil // DeliverEvents deletes them once delivered
	}
	orgs, err := m.events.PendingEventOrgs(ctx)
	if err != nil || len(orgs) == 0 {
		return 0, err
	}
	ops, err := m.journal.Operations(ctx)
	if err != nil {
		return 0, err
	}
	busy := map[OrgID]bool{}
	for _, op := range ops {
		busy[op.OrgID] = true
	}
	n := 0
	for _, org := range orgs {
		if cursor, err := m.events.EventCursor(ctx, org); err != nil || cursor > 0 {
			// A process with delivery delivers them (processes are
			// configured apart): its mark, its purge.
			if err != nil {
				return n, err
			}
			continue
		}
		_, err := m.orgs.OrgByID(ctx, org)
		switch {
		case errors.Is(err, ErrNotFound) && !busy[org]:
			if err := m.events.DeleteEvents(ctx, org); err != nil {
				return n, err
			}
			n++
		case err == nil:
			if err := m.events.MarkEventsPending(ctx, org, false); err != nil {
				return n, err
			}
		case !errors.Is(err, ErrNotFound):
			return n, err
		}
	}
	return n, nil
}

// asideSlots bounds the events recorded aside at once (recordAside).
const asideSlots = 64

// recordAside records ev in the background, within 10 s, so that the
// request's time does not tell whether it had an event: failed logins
// of existing accounts. Past asideSlots at once (a database too slow for
// an attack's pace), the event is dropped and logged.
func (m *Manager) recordAside(ctx context.Context, ev *Event) {
	select {
	case m.aside <- struct{}{}:
	default:
		m.log.WarnContext(ctx, "event dropped: too many recorded aside at once", "type", ev.Type, "org_id", ev.OrgID)
		return
	}
	at := m.stamp() // the clock is read on the request's goroutine
	go func() {
		defer func() { <-m.aside }()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := m.recordUnlockedAt(rctx, ev, at); err != nil {
			m.log.ErrorContext(rctx, "event not recorded", "type", ev.Type, "org_id", ev.OrgID, "err", err)
		}
	}()
}

// derivedEventID returns the id of the event of what key names, the same
// every time: "evt_" and 24 hex digits of its SHA-256.
func derivedEventID(kind, key string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + key))
	return "evt_" + hex.EncodeToString(sum[:12])
}

// Events returns a page of up to limit events (20 if 0; at most
// MaxListLimit) of the organization of claims, oldest first,
// numbered after after, and the number to pass as after for the next
// page (0 when this page is the last). Owners and admins may read them
// (ErrForbidden otherwise).
func (m *Manager) Events(ctx context.Context, claims *Claims, after int64, limit int) ([]*Event, int64, error) {
	if claims == nil {
		return nil, 0, fmt.Errorf("no claims: %w", ErrUnauthenticated)
	}
	if !claims.Can(PermReadEvents) {
		return nil, 0, forbidden("role %q may not read the organization's events", claims.Role)
	}
	var verr ValidationError
	if limit < 0 || limit > MaxListLimit {
		verr.add("limit", fmt.Sprintf("must be an integer from 1 to %d", MaxListLimit))
	}
	if after < 0 {
		verr.add("after", "must not be negative")
	}
	if err := verr.err(); err != nil {
		return nil, 0, err
	}
	if limit == 0 {
		limit = 20
	}
	page, err := m.events.Events(ctx, claims.OrgID, after, limit+1)
	if err != nil {
		return nil, 0, fmt.Errorf("events of organization %s: %w", claims.OrgID, err)
	}
	var next int64
	if len(page) > limit {
		page = page[:limit]
		next = page[limit-1].Seq
	}
	return page, next, nil
}

// settleEvent records the event of the journal entry op if its operation
// took effect, as recovery found it after settling it. The caller holds
// the organization's lock.
func (m *Manager) settleEvent(ctx context.Context, op *Operation) error {
	if op.Event == nil {
		return nil
	}
	done, err := m.tookEffect(ctx, op)
	if err != nil || !done {
		return err
	}
	return m.record(ctx, op.Event)
}

// tookEffect reports whether the settled operation op took effect.
func (m *Manager) tookEffect(ctx context.Context, op *Operation) (bool, error) {
	ev := op.Event
	str := func(k string) string { s, _ := ev.Data[k].(string); return s }
	org, err := m.orgs.OrgByID(ctx, op.OrgID)
	if errors.Is(err, ErrNotFound) {
		org, err = nil, nil
	}
	if err != nil {
		return false, err
	}
	switch op.Kind {
	case OpCreate:
		return org != nil && org.State == OrgActive, nil
	case OpRename:
		if org == nil || org.State != OrgActive || org.Name != str("organization_name") || org.Identifier != str("organization_identifier") {
			return false, nil
		}
		if str("previous_identifier") != str("organization_identifier") {
			n, err := m.collections.CountTenantDocuments(ctx, org.TenantCollection)
			if err != nil {
				return false, err
			}
			ev.Data["documents_migrated"] = n
		}
		return true, nil
	case OpDelete:
		return org == nil, nil
	case OpTransfer:
		return org != nil && org.AdminID == op.AdminID, nil
	case OpAccept, OpChangeRole:
		if org == nil {
			return false, nil
		}
		mb, err := m.members.Membership(ctx, op.OrgID, op.AdminID)
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if op.Kind == OpAccept {
			// Joined by this accept, not a membership from before.
			return mb.JoinedAt.Equal(op.Started), nil
		}
		return mb.Role == Role(str("role")), nil
	case OpRemoveMember:
		_, err := m.members.Membership(ctx, op.OrgID, op.AdminID)
		if errors.Is(err, ErrNotFound) {
			return true, nil
		}
		return false, err
	case OpInvite, OpRevoke:
		_, err := m.invitations.Invitation(ctx, op.Invitation)
		switch {
		case errors.Is(err, ErrNotFound):
			return op.Kind == OpRevoke, nil
		case err != nil:
			return false, err
		}
		return op.Kind == OpInvite, nil
	}
	return false, nil
}

// actorKey is the context key of the account an operation acts for.
type actorKey struct{}

// withActor returns ctx carrying the account of claims as the actor of
// the events recorded under it.
func withActor(ctx context.Context, claims *Claims) context.Context {
	if claims == nil {
		return ctx
	}
	return context.WithValue(ctx, actorKey{}, claims.AdminID)
}

// actorOf returns the actor ctx carries, or "".
func actorOf(ctx context.Context) AdminID {
	a, _ := ctx.Value(actorKey{}).(AdminID)
	return a
}
