package tenancy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// RecoveryReport counts what Recover or RecoverPending settled.
type RecoveryReport struct {
	// CreatesRolledBack counts creations undone: none was acknowledged.
	CreatesRolledBack int
	// RenamesSettled counts renames completed or rolled back.
	RenamesSettled int
	// DeletesCompleted counts deletions finished.
	DeletesCompleted int
	// MemberOperationsSettled counts accepted invitations, removed members
	// and transfers of ownership completed or rolled back.
	MemberOperationsSettled int
	// NamesReleased counts reserved names no organization used.
	NamesReleased int
	// Busy counts organizations skipped because a live operation holds them.
	Busy int
	// Expired counts expired revocations, login-failure records and
	// invitations removed.
	Expired int64
	// EventsDeleted counts deleted organizations whose events were
	// deleted (without event delivery; with it, DeliverEvents does).
	EventsDeleted int
}

func (r *RecoveryReport) add(o RecoveryReport) {
	r.CreatesRolledBack += o.CreatesRolledBack
	r.RenamesSettled += o.RenamesSettled
	r.DeletesCompleted += o.DeletesCompleted
	r.MemberOperationsSettled += o.MemberOperationsSettled
	r.NamesReleased += o.NamesReleased
	r.Busy += o.Busy
	r.Expired += o.Expired
	r.EventsDeleted += o.EventsDeleted
}

// settled reports whether r counts anything settled or removed.
func (r RecoveryReport) settled() bool {
	r.Busy = 0
	return r != RecoveryReport{}
}

// fullRecoveryInterval is how often RunRecovery runs Recover's full
// pass; RecoverPending runs at the interval it is given.
const fullRecoveryInterval = time.Hour

// RunRecovery settles, until ctx ends, what operations of dead or failed
// processes left unfinished: it runs Recover at once and then every
// hour, and RecoverPending every `every` (a second
// suits a server: an operation whose process was killed is then settled
// within the lease and a second). Every serving process should run it,
// in a goroutine of its own; several processes may run it at once, since
// each organization is settled under its lock. Failures are logged and
// tried again at the next tick. It returns when ctx ends, with ctx's
// error, or at once if every is not positive.
func (m *Manager) RunRecovery(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		return fmt.Errorf("tenancy: recovery interval %v must be positive", every)
	}
	full := time.NewTicker(fullRecoveryInterval)
	defer full.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	pass := m.Recover
	for {
		if _, err := pass(ctx); err != nil && ctx.Err() == nil {
			m.log.ErrorContext(ctx, "recovery left operations unfinished; trying again", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-full.C:
			pass = m.Recover
		case <-tick.C:
			pass = m.RecoverPending
		}
	}
}

// RecoverPending settles the operations of the journal whose lease ran
// out (see Operation): an organization still creating is rolled back (its
// creation was never acknowledged), a rename completes or rolls back
// depending on whether its collection moved, a deletion completes, and
// the names the operation reserved and the organization does not use are
// released. Operations whose process still renews the lease are left
// alone. A pass reads the journal, which holds only what is in flight, and
// by id what it settles: it costs nothing per organization. It returns
// the errors of the entries it could not settle, joined, after trying
// them all; an entry that cannot be settled without an operator (a rename
// whose collections were both dropped by hand) is tried again only after
// the next Recover.
func (m *Manager) RecoverPending(ctx context.Context) (RecoveryReport, error) {
	var rep RecoveryReport
	ops, err := m.journal.Operations(ctx)
	if err != nil {
		return rep, fmt.Errorf("recover: read the journal: %w", err)
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, recoveryParallelism)
	)
	for _, op := range ops {
		if _, skip := m.unsettleable.Load(op.OrgID); skip {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var one RecoveryReport
			err := m.recoverOperation(ctx, op, &one)
			mu.Lock()
			defer mu.Unlock()
			rep.add(one)
			switch {
			case errors.Is(err, errBusy):
				rep.Busy++
			case errors.Is(err, errCollectionsLost):
				m.unsettleable.Store(op.OrgID, true)
				errs = append(errs, err)
			case err != nil:
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	purged, err := m.purgeDeleted(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("recover: delete the events of deleted organizations: %w", err))
	}
	rep.EventsDeleted += purged
	m.logRecovery(ctx, rep)
	return rep, errors.Join(errs...)
}

// recoveryParallelism is how many journal entries RecoverPending settles
// at once: after a crash with many operations in flight, settling them one
// by one would add up their copies and counts.
const recoveryParallelism = 4

// Recover is RecoverPending followed by a full pass for what the journal
// cannot show: organizations left unfinished without a journal entry
// (written before the journal existed), reserved names that no
// organization uses (an interrupted sweep of a stray collection), and the
// revocations and login-failure records that expired. The full pass reads
// every organization record and reservation, so run it at start and then
// rarely (RunRecovery runs it hourly). It touches only what has not
// changed for the operation lease and takes each organization's lock, so
// it is safe to run from several processes at once, while others serve.
func (m *Manager) Recover(ctx context.Context) (RecoveryReport, error) {
	m.unsettleable.Clear()
	rep, err := m.RecoverPending(ctx)
	errs := []error{err}
	var full RecoveryReport
	now := m.now().UTC()
	cut := now.Add(-m.lease)

	orgs, err := m.orgs.UnfinishedOrgs(ctx, cut)
	if err != nil {
		return rep, errors.Join(append(errs, fmt.Errorf("recover: %w", err))...)
	}
	for _, o := range orgs {
		err := m.lockedRecoverOrg(ctx, o.ID, &full)
		switch {
		case errors.Is(err, errBusy):
			full.Busy++
		case err != nil:
			errs = append(errs, err)
		}
	}

	names, err := m.orgs.Reservations(ctx, cut)
	if err != nil {
		return rep, errors.Join(append(errs, fmt.Errorf("recover: %w", err))...)
	}
	for _, r := range names {
		released, err := m.releaseUnused(ctx, r)
		switch {
		case errors.Is(err, errBusy):
			full.Busy++
		case err != nil:
			errs = append(errs, err)
		case released:
			full.NamesReleased++
		}
	}
	if full.Expired, err = m.revocations.DeleteExpired(ctx, now, now.Add(-FailureMemory)); err != nil {
		errs = append(errs, fmt.Errorf("recover: delete expired records: %w", err))
	}
	invitations, err := m.invitations.DeleteExpiredInvitations(ctx, now)
	if err != nil {
		errs = append(errs, fmt.Errorf("recover: delete expired invitations: %w", err))
	}
	full.Expired += invitations
	m.logRecovery(ctx, full)
	rep.add(full)
	return rep, errors.Join(errs...)
}

func (m *Manager) logRecovery(ctx context.Context, rep RecoveryReport) {
	m.recoverySettled(rep)
	if rep.settled() {
		m.log.InfoContext(ctx, "recovered unfinished operations", "creates_rolled_back", rep.CreatesRolledBack,
			"renames_settled", rep.RenamesSettled, "deletes_completed", rep.DeletesCompleted, "member_operations_settled", rep.MemberOperationsSettled,
			"names_released", rep.NamesReleased, "busy", rep.Busy, "expired_records", rep.Expired, "events_deleted", rep.EventsDeleted)
	}
}

// recoverOperation settles the journal entry op under its organization's
// lock, then removes it. It returns errBusy if a live operation holds the
// lock.
func (m *Manager) recoverOperation(ctx context.Context, op *Operation, rep *RecoveryReport) error {
	ctx, unlock, err := m.lockOrg(ctx, op.OrgID)
	if err != nil {
		return err
	}
	defer unlock()
	return m.settleEntry(ctx, op.OrgID, rep)
}

// settleEntry settles organization id's journal entry, if it has one,
// and removes it. The caller holds the organization's lock.
func (m *Manager) settleEntry(ctx context.Context, id OrgID, rep *RecoveryReport) error {
	// Read the entry under the lock: an operation may have ended, or
	// another begun and failed, since the journal was last read.
	op, err := m.operationOf(ctx, id)
	if err != nil || op == nil {
		return err
	}
	if isMemberOperation(op.Kind) {
		if err := m.settleMemberOperation(ctx, op); err != nil {
			return fmt.Errorf("recover %s on organization %s: %w", op.Kind, op.OrgID, err)
		}
		rep.MemberOperationsSettled++
	}
	var ev *Event
	if op.Kind == OpDelete {
		ev = op.Event
	}
	org, err := m.settleOrg(ctx, op.OrgID, ev, rep)
	if err != nil {
		return err
	}
	if err := m.settleEvent(ctx, op); err != nil {
		return fmt.Errorf("recover %s on organization %s: record its event: %w", op.Kind, op.OrgID, err)
	}
	for _, name := range op.Names {
		if org != nil && (org.Identifier == name || org.PendingIdentifier == name) {
			continue
		}
		if err := m.releaseOperationName(ctx, op, name); err != nil {
			return fmt.Errorf("recover organization %s: release %q: %w", op.OrgID, name, err)
		}
	}
	if err := m.journal.DeleteOperation(ctx, op.OrgID); err != nil {
		return fmt.Errorf("recover organization %s: clear its journal entry: %w", op.OrgID, err)
	}
	return nil
}

// operationOf returns org id's journal entry, or nil if it has none.
func (m *Manager) operationOf(ctx context.Context, id OrgID) (*Operation, error) {
	ops, err := m.journal.Operations(ctx)
	if err != nil {
		return nil, fmt.Errorf("recover organization %s: read the journal: %w", id, err)
	}
	for _, op := range ops {
		if op.OrgID == id {
			return op, nil
		}
	}
	return nil, nil
}

// releaseOperationName releases a name op reserved and its organization
// does not use. A rename's old name may have under it a collection an
// overtaken tenant write made (see Tenant): it is dropped first, while the
// name is held, unless another organization holds the name by now.
func (m *Manager) releaseOperationName(ctx context.Context, op *Operation, name string) error {
	// Names[0] is a rename's target: a collection there that is not the
	// org's was refused by the rename (another application's), never made
	// by a tenant write, so only the old name is swept.
	if op.Kind != OpRename || name == op.Names[0] {
		return m.orgs.ReleaseName(ctx, name, op.OrgID)
	}
	err := m.orgs.ReserveName(ctx, name, op.OrgID, m.now().UTC())
	if errors.Is(err, ErrConflict) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := m.dropStray(ctx, TenantCollection(name)); err != nil {
		return err
	}
	return m.orgs.ReleaseName(ctx, name, op.OrgID)
}

// lockedRecoverOrg settles organization id under its lock; see settleOrg.
// It returns errBusy if a live operation holds the lock.
func (m *Manager) lockedRecoverOrg(ctx context.Context, id OrgID, rep *RecoveryReport) error {
	ctx, unlock, err := m.lockOrg(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	// Its journal entry first, if it has one: it holds the event of
	// the operation to settle.
	if err := m.settleEntry(ctx, id, rep); err != nil {
		return err
	}
	_, err = m.settleOrg(ctx, id, nil, rep)
	return err
}

// settleOrg finishes what the state of organization id says was left
// unfinished, and returns the organization as it is then (nil if it is
// gone). ev is the event of its journal entry, if any. The caller holds
// its lock.
func (m *Manager) settleOrg(ctx context.Context, id OrgID, ev *Event, rep *RecoveryReport) (*Org, error) {
	org, err := m.orgs.OrgByID(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("recover organization %s: %w", id, err)
	}
	switch org.State {
	case OrgCreating:
		if err := m.rollbackCreate(ctx, org); err != nil {
			return nil, err
		}
		rep.CreatesRolledBack++
		return nil, nil
	case OrgRenaming:
		if err := m.settleRename(ctx, org); err != nil {
			return nil, err
		}
		rep.RenamesSettled++
	case OrgDeleting:
		if err := m.deleteLocked(ctx, org, ev); err != nil {
			return nil, err
		}
		rep.DeletesCompleted++
		return nil, nil
	}
	return org, nil
}

// releaseUnused releases r if its organization is gone or neither is named
// by it nor is renaming to it.
func (m *Manager) releaseUnused(ctx context.Context, r Reservation) (bool, error) {
	org, err := m.orgs.OrgByID(ctx, r.OrgID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return false, fmt.Errorf("recover name %q: %w", r.Identifier, err)
	}
	if err == nil && (org.Identifier == r.Identifier || org.PendingIdentifier == r.Identifier) {
		return false, nil
	}
	// Under the holder's lock even when no org has its id (a sweep's
	// holder): two passes releasing one name at once could otherwise
	// release a reservation made between them.
	ctx, unlock, err := m.lockOrg(ctx, r.OrgID)
	if err != nil {
		return false, err
	}
	defer unlock()
	org, err = m.orgs.OrgByID(ctx, r.OrgID)
	switch {
	case err != nil && !errors.Is(err, ErrNotFound):
		return false, fmt.Errorf("recover name %q: %w", r.Identifier, err)
	case err == nil && (org.Identifier == r.Identifier || org.PendingIdentifier == r.Identifier):
		return false, nil
	}
	return true, m.orgs.ReleaseName(ctx, r.Identifier, r.OrgID)
}

// beginOperation records in the journal that an operation of kind starts
// on org id, which may reserve names and records ev once it took effect.
// The caller holds the org's lock.
func (m *Manager) beginOperation(ctx context.Context, id OrgID, kind string, ev *Event, names ...string) error {
	op := &Operation{OrgID: id, Kind: kind, Names: slices.Clone(names), Started: m.now().UTC(), Event: ev}
	if err := m.journal.PutOperation(ctx, op); err != nil {
		return fmt.Errorf("record %s of organization %s in the journal: %w", kind, id, err)
	}
	return nil
}

// finishOperation records ev, the event of org id's operation, which
// took effect, and then removes the operation's journal entry. Failures
// are logged: the entry stays, and recovery records the event from it.
func (m *Manager) finishOperation(ctx context.Context, id OrgID, ev *Event) {
	if err := m.record(ctx, ev); err != nil {
		m.log.WarnContext(ctx, "record an operation's event; recovery records it later", "org_id", id, "err", err)
		return
	}
	m.endOperation(ctx, id)
}

// endOperation removes org id's journal entry once its operation is
// settled. A failure is logged: recovery removes the entry later.
func (m *Manager) endOperation(ctx context.Context, id OrgID) {
	if err := m.journal.DeleteOperation(ctx, id); err != nil {
		m.log.WarnContext(ctx, "clear a settled operation from the journal; recovery clears it later", "org_id", id, "err", err)
	}
}
