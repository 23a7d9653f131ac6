package tenancy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// An operation that changes an organization in several steps (create,
// rename, delete, and recovery settling one of them) holds the
// organization's lock for as long as it runs. The lock is a lease:
//
//   - it is taken until now + the lease (WithOperationLease, 15 s by
//     default) and renewed every third of the lease while the operation
//     works, however long that is (a copying rename of a large tenant);
//   - the fence: if no renewal has succeeded by a fifth of the lease
//     before the lease would end (a stalled process or database, a lost
//     network), the operation's context ends with ErrLeaseLost, so the
//     holder stops before any other process may take the lock over; a
//     renewal that answers after that counts for nothing, and one that
//     finds the lock taken over ends the operation at once;
//   - a process that dies stops renewing: its lease runs out, and the
//     recovery loop of any serving process (RunRecovery) takes the lock
//     and settles what it left.

// errBusy marks a lock held by a live operation.
var errBusy = errors.New("busy with another operation")

// leaseKey is the context key of the lease context of an operation.
type leaseKey struct{}

// lockOrg takes org's lock for one operation and returns the context the
// operation must run in, and the lock's release. The context ends when
// ctx does or when the lease is lost (its cause is then ErrLeaseLost).
// It returns ErrConflict (errBusy) if another operation holds the lock.
func (m *Manager) lockOrg(ctx context.Context, id OrgID) (context.Context, func(), error) {
	owner := newObjectID(m.now())
	start := time.Now()
	now := m.now().UTC()
	if err := m.journal.LockOrg(ctx, id, owner, now.Add(m.lease), now); err != nil {
		if !errors.Is(err, ErrConflict) && !errors.Is(err, ErrInvalid) {
			// The lock may have been taken with the reply lost: give it
			// back rather than block the org until the lease ends.
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			_ = m.journal.UnlockOrg(uctx, id, owner)
			cancel()
		}
		switch {
		case errors.Is(err, ErrConflict):
			return nil, nil, fmt.Errorf("organization %s is %w: %w", id, errBusy, err)
		case errors.Is(err, ErrInvalid):
			return nil, nil, fmt.Errorf("organization %s: %w", id, ErrNotFound)
		}
		return nil, nil, fmt.Errorf("lock organization %s: %w", id, err)
	}

	// The lease context outlives the caller's cancellation (a rollback
	// must still run) but not the lease.
	leaseCtx, loseLease := context.WithCancelCause(context.WithoutCancel(ctx))
	f := &fence{lease: m.lease, lose: loseLease}
	f.timer = time.AfterFunc(f.left(start), func() { loseLease(ErrLeaseLost) })
	opCtx, cancelOp := context.WithCancelCause(context.WithValue(ctx, leaseKey{}, leaseCtx))
	stopLost := context.AfterFunc(leaseCtx, func() { cancelOp(context.Cause(leaseCtx)) })

	stop, renewed := make(chan struct{}), make(chan struct{})
	go m.renewLease(leaseCtx, id, owner, f, stop, renewed)

	return opCtx, func() {
		close(stop)
		<-renewed
		f.timer.Stop()
		stopLost()
		cancelOp(nil)
		if errors.Is(context.Cause(leaseCtx), ErrLeaseLost) {
			// Another process may hold the lock by now, and writes this
			// one abandoned may still be in flight: leave the lock to
			// run out rather than touch it.
			m.log.WarnContext(ctx, "operation lease lost; the operation stopped and recovery settles it", "org_id", id)
			return
		}
		loseLease(nil)
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := m.journal.UnlockOrg(uctx, id, owner); err != nil {
			m.log.ErrorContext(ctx, "unlock organization; it stays locked until its lease ends", "org_id", id, "err", err)
		}
	}, nil
}

// fence ends an operation's lease context when no renewal succeeded in
// time.
type fence struct {
	lease time.Duration
	lose  context.CancelCauseFunc
	mu    sync.Mutex
	timer *time.Timer
}

// left is how long after a successful renewal sent at start the holder
// may still act: the lease less a fifth, for clock skew between processes
// and the time a takeover takes to read the lock.
func (f *fence) left(start time.Time) time.Duration {
	return time.Until(start.Add(f.lease - f.lease/5))
}

// renewed moves the fence after a renewal sent at start succeeded. A
// renewal that answers after the fence ended the lease counts for nothing.
func (f *fence) renewed(start time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.timer.Stop() {
		f.timer.Reset(f.left(start))
	}
}

// renewLease renews owner's lock on org every third of the lease until
// stop is closed or the lease is lost, then closes done.
func (m *Manager) renewLease(leaseCtx context.Context, id OrgID, owner string, f *fence, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	every := m.lease / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-leaseCtx.Done():
			return
		case <-tick.C:
		}
		start := time.Now()
		now := m.now().UTC()
		rctx, cancel := context.WithTimeout(leaseCtx, every)
		err := m.journal.RenewLock(rctx, id, owner, now.Add(m.lease))
		cancel()
		switch {
		case err == nil:
			f.renewed(start)
		case errors.Is(err, ErrConflict):
			m.log.ErrorContext(leaseCtx, "operation lock taken over; stopping the operation", "org_id", id, "err", err)
			f.lose(ErrLeaseLost)
			return
		case leaseCtx.Err() == nil:
			// The fence stops the operation if renewals keep failing.
			m.log.WarnContext(leaseCtx, "renew operation lease", "org_id", id, "err", err)
		}
	}
}

// leaseError returns err, or, if the operation of ctx stopped because its
// lease was lost, a *RetryError of ErrLeaseLost: recovery settles the
// operation within the lease, and the caller may then look again.
func (m *Manager) leaseError(ctx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(ctx), ErrLeaseLost) {
		m.log.WarnContext(ctx, "operation stopped: its lease was lost", "err", err)
		return &RetryError{Kind: ErrLeaseLost, After: m.lease}
	}
	return err
}

// undoList collects the steps that undo an operation's partial work.
type undoList []func(context.Context) error

func (u *undoList) add(step func(context.Context) error) { *u = append(*u, step) }

// step is one step of a create or rename: do takes it, and undo, if not
// nil, takes it back. A step can take effect and still report an error (a
// lost reply, a canceled context), so undo must be safe to run whether or
// not do took effect.
type step struct {
	do, undo func(context.Context) error
}

// runSteps runs the steps of the operation op on the org id in order,
// registering each undo before its step runs. On the first error it rolls
// back the steps begun, newest first, and returns the error. A step may
// empty *undo: past a point of no return, what is left is completed by
// the next operation on the org or by recovery, not undone.
func (m *Manager) runSteps(ctx context.Context, op string, id OrgID, undo *undoList, steps ...step) error {
	for _, s := range steps {
		if s.undo != nil {
			undo.add(s.undo)
		}
		if err := s.do(ctx); err != nil {
			m.rollback(ctx, op, id, *undo)
			return err
		}
	}
	return nil
}

// rollbackTimeout bounds a rollback's steps, which run after the caller
// gave up.
const rollbackTimeout = 30 * time.Second

// rollback runs undo steps in reverse order. It runs them even when ctx is
// done, since they repair state the caller's operation left behind, but
// only while the operation's lease holds: after the lease is lost,
// another process settles the operation. It stops at the first step that
// fails, leaving a state that is consistent in order, for a later retry or
// recovery to finish; the failure is logged, not returned, because the
// caller's error is the one that matters.
func (m *Manager) rollback(ctx context.Context, op string, id OrgID, undo undoList) {
	lctx, ok := ctx.Value(leaseKey{}).(context.Context)
	if !ok {
		lctx = context.WithoutCancel(ctx)
	}
	lctx, cancel := context.WithTimeout(lctx, rollbackTimeout)
	defer cancel()
	for i := len(undo) - 1; i >= 0; i-- {
		if err := undo[i](lctx); err != nil {
			m.log.ErrorContext(lctx, "roll back organization "+op, "org_id", id, "step", i, "err", err)
			return
		}
	}
}

// memberWait is how long a member operation waits for another operation
// on the same organization (or account) to finish before it answers
// ErrConflict: member operations are short, and a burst of invitations
// to one organization should queue, not fail.
const memberWait = 5 * time.Second

// lockWait is lockOrg, tried again while another operation holds the
// lock, for up to memberWait. An operation of a dead process that the
// organization's journal still holds is settled first, so that a member
// operation never writes over its entry.
func (m *Manager) lockWait(ctx context.Context, id OrgID) (context.Context, func(), error) {
	lctx, unlock, err := m.lockRetrying(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if err := m.settleEntry(lctx, id, &RecoveryReport{}); err != nil {
		unlock()
		return nil, nil, err
	}
	return lctx, unlock, nil
}

// lockAccount takes the lock of the account admin, waiting as lockWait
// does: an account's memberships change only under it. Accounts have no
// journal entries to settle.
func (m *Manager) lockAccount(ctx context.Context, admin AdminID) (context.Context, func(), error) {
	lctx, unlock, err := m.lockRetrying(ctx, OrgID(admin))
	if err != nil {
		return nil, nil, fmt.Errorf("lock account %s: %w", admin, err)
	}
	return lctx, unlock, nil
}

// lockRetrying is lockOrg, tried again while another operation holds the
// lock, for up to memberWait.
func (m *Manager) lockRetrying(ctx context.Context, id OrgID) (context.Context, func(), error) {
	deadline := time.Now().Add(memberWait)
	delay := 5 * time.Millisecond
	for {
		lctx, unlock, err := m.lockOrg(ctx, id)
		if err == nil {
			return lctx, unlock, nil
		}
		if !errors.Is(err, errBusy) || time.Now().After(deadline) {
			return nil, nil, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, context.Cause(ctx)
		case <-t.C:
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}
