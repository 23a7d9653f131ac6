package tenancy

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// EventSink is where DeliverEvents sends events: the webhook package's
// Sender is one. Deliver returns nil once the receiver took ev (a 2xx);
// any error makes DeliverEvents try again later.
type EventSink interface {
	Deliver(ctx context.Context, ev *Event) error
}

// EventDelivery configures the delivery of events (WithEventDelivery).
type EventDelivery struct {
	// Sink receives every event, at least once, in order per
	// organization.
	Sink EventSink
	// FirstRetry is the wait after a first failed delivery, doubled after
	// each further failure up to MaxRetry (defaults: 1 s and 10 min).
	FirstRetry time.Duration
	MaxRetry   time.Duration
	// GiveUpAfter is how long an event is retried before it is skipped
	// and logged (default 72 h). Hooks.EventDelivery is told "dropped".
	GiveUpAfter time.Duration
	// Timeout bounds one delivery (default 10 s).
	Timeout time.Duration
}

// Defaults of EventDelivery.
const (
	DefaultEventFirstRetry  = time.Second
	DefaultEventMaxRetry    = 10 * time.Minute
	DefaultEventGiveUpAfter = 72 * time.Hour
	DefaultEventTimeout     = 10 * time.Second
)

func (d EventDelivery) withDefaults() EventDelivery {
	if d.FirstRetry <= 0 {
		d.FirstRetry = DefaultEventFirstRetry
	}
	if d.MaxRetry <= 0 {
		d.MaxRetry = DefaultEventMaxRetry
	}
	d.MaxRetry = max(d.MaxRetry, d.FirstRetry)
	if d.GiveUpAfter <= 0 {
		d.GiveUpAfter = DefaultEventGiveUpAfter
	}
	if d.Timeout <= 0 {
		d.Timeout = DefaultEventTimeout
	}
	return d
}

// WithEventDelivery makes the Manager mark every event it records for
// delivery to d.Sink, which DeliverEvents does. Every process that
// shares a database should be given the same: events recorded by a
// process without it are delivered only once a later event of the same
// organization is, or after the next sweep (see DeliverEvents), and its
// recovery loop may unmark organizations that delivery has not reached
// yet (it leaves alone those with a delivery cursor). Without it, the
// recovery loop (RunRecovery, RecoverPending) deletes a deleted
// organization's events; with it, DeliverEvents does, once the
// organization.deleted event was delivered.
func WithEventDelivery(d EventDelivery) Option {
	return func(c *config) error {
		if d.Sink == nil {
			return errors.New("tenancy: WithEventDelivery needs a Sink")
		}
		c.delivery = d
		return nil
	}
}

// deliveryLease is the lock DeliverEvents holds, so that one process at
// a time delivers: an id no organization gets (ids start with a time).
const deliveryLease OrgID = "000000000000000000000001"

// sweepInterval is how often DeliverEvents looks for events that were
// recorded without their mark (a crash between the two).
const sweepInterval = time.Hour

// DeliverEvents sends the recorded events to the sink of
// WithEventDelivery until ctx ends, and returns ctx's error. Every
// serving process may run it: one at a time holds the delivery lease
// and delivers, the others wait to take over. Each organization's events
// go in order, each at least once (a receiver must tell repeats by the
// event id); the position reached is stored after each one the sink
// took, so a restart, even after SIGKILL, resumes there. A failed
// delivery is tried again after FirstRetry, doubling up to MaxRetry,
// for GiveUpAfter; the organization's later events wait for it. Once an
// organization.deleted event is delivered, the organization's events
// are deleted.
func (m *Manager) DeliverEvents(ctx context.Context) error {
	if m.delivery.Sink == nil {
		return errors.New("tenancy: DeliverEvents needs WithEventDelivery")
	}
	d := &deliverer{m: m, retry: map[OrgID]*retryState{}}
	for {
		lctx, unlock, err := m.lockOrg(ctx, deliveryLease)
		lost := false
		if err == nil {
			err = d.run(lctx)
			lost = errors.Is(context.Cause(lctx), ErrLeaseLost)
			unlock()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && !errors.Is(err, errBusy) && !lost {
			m.log.WarnContext(ctx, "event delivery paused", "err", err)
		}
		t := time.NewTimer(m.lease / 3)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// deliverer is DeliverEvents' state while it holds the lease.
type deliverer struct {
	m     *Manager
	retry map[OrgID]*retryState
}

// retryState is an organization whose next event failed.
type retryState struct {
	event    string    // the event that failed
	first    time.Time // its first failure
	failures int
	next     time.Time
}

// deliveryTick is how often the deliverer looks at the marks when this
// process records nothing and no retry is due sooner.
const deliveryTick = time.Second

// run delivers until ctx (the lease's context) ends.
func (d *deliverer) run(ctx context.Context) error {
	m := d.m
	if err := d.sweep(ctx); err != nil {
		return err
	}
	lastSweep := time.Now()
	wake := time.NewTimer(deliveryTick)
	defer wake.Stop()
	for {
		orgs, err := m.events.PendingEventOrgs(ctx)
		if err != nil {
			return fmt.Errorf("read organizations with events to deliver: %w", err)
		}
		for _, org := range orgs {
			if r := d.retry[org]; r != nil && time.Now().Before(r.next) {
				continue
			}
			if err := d.deliverOrg(ctx, org); err != nil {
				if ctx.Err() != nil {
					return context.Cause(ctx)
				}
				m.log.WarnContext(ctx, "deliver events", "org_id", org, "err", err)
			}
		}
		if time.Since(lastSweep) > sweepInterval {
			if err := d.sweep(ctx); err != nil {
				return err
			}
			lastSweep = time.Now()
		}
		wake.Reset(d.nextWake())
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-wake.C:
		case <-m.recorded:
		}
	}
}

// nextWake is how long the deliverer may sleep: until the first retry
// due, or deliveryTick, whichever comes first.
func (d *deliverer) nextWake() time.Duration {
	wait := deliveryTick
	for _, r := range d.retry {
		wait = min(wait, max(time.Until(r.next), 0))
	}
	return wait
}

// sweep marks the organizations whose events are ahead of their cursor
// without a mark: a process died between recording an event and marking
// it.
func (d *deliverer) sweep(ctx context.Context) error {
	orgs, err := d.m.events.UndeliveredEventOrgs(ctx)
	if err != nil {
		return fmt.Errorf("look for undelivered events: %w", err)
	}
	for _, org := range orgs {
		if err := d.m.events.MarkEventsPending(ctx, org, true); err != nil {
			return fmt.Errorf("mark undelivered events of %s: %w", org, err)
		}
	}
	return nil
}

// deliverPage is how many events of an organization are read at once.
const deliverPage = 20

// deliverOrg delivers org's events after its cursor, in order, and
// unmarks it once none is left. The mark is removed before the last
// look, and put back if an event came meanwhile: a recorder marks after
// appending, so an event appended after that look is marked again.
func (d *deliverer) deliverOrg(ctx context.Context, org OrgID) error {
	m := d.m
	cursor, err := m.events.EventCursor(ctx, org)
	if err != nil {
		return err
	}
	unmarked := false
	for {
		page, err := m.events.Events(ctx, org, cursor, deliverPage)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			if unmarked {
				return d.purgeIfGone(ctx, org)
			}
			if err := m.events.MarkEventsPending(ctx, org, false); err != nil {
				return err
			}
			unmarked = true
			continue // look once more
		}
		if unmarked {
			if err := m.events.MarkEventsPending(ctx, org, true); err != nil {
				return err
			}
			unmarked = false
		}
		for _, ev := range page {
			if err := d.deliverOne(ctx, ev); err != nil {
				return err
			}
			if ev.Type == EventOrgDeleted {
				// The last: the events go, cursor and mark with them. A
				// failure leaves the cursor before it, so that it is
				// delivered again and the deletion tried again.
				if err := m.events.DeleteEvents(ctx, org); err != nil {
					d.failed(ev)
					return fmt.Errorf("delete the events of deleted organization %s: %w", org, err)
				}
				return nil
			}
			if err := m.events.SetEventCursor(ctx, org, ev.Seq); err != nil {
				return fmt.Errorf("store the delivery cursor: %w", err)
			}
			cursor = ev.Seq
		}
	}
}

// purgeIfGone deletes the delivered events of org if the organization is
// gone and no operation on it is in flight: events a login or a logout
// racing the deletion recorded after its organization.deleted event.
func (d *deliverer) purgeIfGone(ctx context.Context, org OrgID) error {
	m := d.m
	_, err := m.orgs.OrgByID(ctx, org)
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	if op, err := m.operationOf(ctx, org); err != nil || op != nil {
		return err
	}
	return m.events.DeleteEvents(ctx, org)
}

// deliverOne sends ev to the sink. A failure sets the organization's
// retry; past GiveUpAfter the event is skipped (nil).
func (d *deliverer) deliverOne(ctx context.Context, ev *Event) error {
	m := d.m
	sctx, cancel := context.WithTimeout(ctx, m.delivery.Timeout)
	err := m.delivery.Sink.Deliver(sctx, ev)
	cancel()
	if err == nil {
		delete(d.retry, ev.OrgID)
		m.eventDelivered("success", ev)
		return nil
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	r := d.failed(ev)
	if time.Since(r.first) >= m.delivery.GiveUpAfter {
		delete(d.retry, ev.OrgID)
		m.log.ErrorContext(ctx, "event dropped: its deliveries failed for too long", "event", ev.ID, "type", ev.Type,
			"org_id", ev.OrgID, "failures", r.failures, "err", err)
		m.eventDelivered("dropped", ev)
		return nil
	}
	m.eventDelivered("failure", ev)
	return fmt.Errorf("event %s: attempt %d failed, next in %v: %w", ev.ID, r.failures, time.Until(r.next).Round(time.Millisecond), err)
}

// failed counts a failure on ev's organization, at ev, and sets when to
// try it again: after FirstRetry, doubled with each failure, up to
// MaxRetry.
func (d *deliverer) failed(ev *Event) *retryState {
	r := d.retry[ev.OrgID]
	if r == nil || r.event != ev.ID {
		r = &retryState{event: ev.ID, first: time.Now()}
		d.retry[ev.OrgID] = r
	}
	r.failures++
	wait := d.m.delivery.FirstRetry << min(r.failures-1, 30)
	if wait <= 0 || wait > d.m.delivery.MaxRetry {
		wait = d.m.delivery.MaxRetry
	}
	r.next = time.Now().Add(wait)
	return r
}

// eventRecorded wakes DeliverEvents, if this process runs it.
func (m *Manager) eventRecorded(OrgID) {
	select {
	case m.recorded <- struct{}{}:
	default:
	}
}
