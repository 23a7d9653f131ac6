package tenancy

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// A rename is a journaled state machine in the organization record:
//
//  1. the new name is reserved (an insert: the only uniqueness check);
//  2. the intent is recorded: State renaming, the Pending* fields;
//  3. the tenant collection moves: renameCollection (metadata only), or,
//     where the server refuses it, a streaming copy (recorded first as
//     PendingCopy), then a drop of the source;
//  4. completion is recorded: the new names, State active;
//  5. a collection an overtaken tenant write made again under the old
//     name is dropped, and the old name is released.
//
// Every step checks before it acts, so a rename found unfinished (its
// process died) is settled by running what is left: see settleRename. A
// rename by renameCollection is undone if it fails before its completion
// is recorded; a copying rename is undone until its source is dropped, and
// completed after.

// RenameResult reports a completed rename.
type RenameResult struct {
	Org                *Org
	PreviousCollection string
	CurrentCollection  string
	// DocumentsMigrated counts the documents of the tenant collection after
	// the move, metadata document included.
	DocumentsMigrated int64
}

// RenameOrg gives the organization id a new name and moves its tenant
// collection to the collection of the new name. A new name with the same
// identifier only changes the display name. It returns a *ValidationError
// for a bad name, ErrNotFound if the organization does not exist, and
// ErrConflict if the new identifier is taken or another operation on the
// organization is in progress.
func (m *Manager) RenameOrg(ctx context.Context, id OrgID, newName string) (*RenameResult, error) {
	return m.renameOrg(ctx, id, newName, nil)
}

// RenameOrgAs is RenameOrg of the organization of claims, by its caller:
// the caller's role, read under the organization's lock, must have
// PermRenameOrg (ErrForbidden otherwise; ErrUnauthenticated if it is no
// longer a member).
func (m *Manager) RenameOrgAs(ctx context.Context, claims *Claims, newName string) (*RenameResult, error) {
	if claims == nil {
		return nil, fmt.Errorf("no claims: %w", ErrUnauthenticated)
	}
	return m.renameOrg(withActor(ctx, claims), claims.OrgID, newName, m.permitted(claims, PermRenameOrg))
}

// permitted returns a check, run under the organization's lock, that the
// caller of claims is a member whose role has p.
func (m *Manager) permitted(claims *Claims, p Permission) func(context.Context) error {
	return func(ctx context.Context) error {
		if _, err := m.orgs.OrgByID(ctx, claims.OrgID); errors.Is(err, ErrNotFound) {
			return fmt.Errorf("organization %s: %w", claims.OrgID, err)
		}
		_, me, err := m.actor(ctx, claims)
		if err != nil {
			return err
		}
		if !me.Role.Can(p) {
			return forbidden("role %q may not do this", me.Role)
		}
		return nil
	}
}

func (m *Manager) renameOrg(ctx context.Context, id OrgID, newName string, check func(context.Context) error) (_ *RenameResult, err error) {
	ctx, done := m.begin(ctx, "rename")
	defer done(&err)
	name, newID, msg := identifier(newName)
	if msg != "" {
		return nil, &ValidationError{Fields: []FieldError{{Field: "organization_name", Message: msg}}}
	}
	ctx, unlock, err := m.lockOrg(ctx, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	defer func() { err = m.leaseError(ctx, err) }()
	// What a dead process left in the journal first: its entry is this
	// organization's one, which this rename's would replace.
	if err := m.settleEntry(ctx, id, &RecoveryReport{}); err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(ctx); err != nil {
			return nil, err
		}
	}
	org, err := m.renamableOrg(ctx, id, newName, newID)
	if err != nil {
		return nil, err
	}
	ev := m.newEvent(EventOrgRenamed, id, actorOf(ctx), map[string]any{
		"previous_name": org.Name, "organization_name": name,
		"previous_identifier": org.Identifier, "organization_identifier": newID,
		"previous_collection": org.TenantCollection, "tenant_collection": TenantCollection(newID),
		"documents_migrated": int64(0),
	})
	if newID == org.Identifier {
		return m.renameDisplay(ctx, org, name, ev)
	}
	r := &renaming{m: m, org: org, old: *org, name: name, newID: newID, from: org.TenantCollection, to: TenantCollection(newID), moved: true, event: ev}
	var undo undoList
	r.undo = &undo
	if err := m.runSteps(ctx, "rename", id, &undo, r.steps()...); err != nil {
		return nil, err
	}
	ev.Data["documents_migrated"] = r.n
	if m.finishRename(ctx, id, r.from, r.old.Identifier) {
		m.finishOperation(ctx, id, ev)
	}
	m.log.InfoContext(ctx, "organization renamed", "org_id", id, "from", r.old.Identifier, "to", newID, "documents", r.n, "copied", org.PendingCopy)
	org.PendingCopy = false
	return &RenameResult{Org: org, PreviousCollection: r.from, CurrentCollection: org.TenantCollection, DocumentsMigrated: r.n}, nil
}

// renamableOrg returns the organization id, whose lock the caller holds,
// with an earlier rename of it settled, if newName (whose identifier is
// newID) is free for it.
func (m *Manager) renamableOrg(ctx context.Context, id OrgID, newName, newID string) (*Org, error) {
	org, err := m.orgs.OrgByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("organization %s: %w", id, err)
	}
	if !org.visible() {
		return nil, fmt.Errorf("organization %s: %w", id, ErrNotFound)
	}
	if org.State == OrgRenaming {
		if err := m.settleRename(ctx, org); err != nil {
			return nil, err
		}
	}
	if err := m.earlierNameTaken(ctx, newName, newID, id); err != nil {
		return nil, err
	}
	return org, nil
}

// renameDisplay is the rename of org to name, which has org's identifier:
// only the display name changes.
func (m *Manager) renameDisplay(ctx context.Context, org *Org, name string, ev *Event) (*RenameResult, error) {
	n, err := m.collections.CountTenantDocuments(ctx, org.TenantCollection)
	if err != nil {
		return nil, fmt.Errorf("count tenant documents: %w", err)
	}
	ev.Data["documents_migrated"] = n
	if err := m.beginOperation(ctx, org.ID, OpRename, ev); err != nil {
		return nil, err
	}
	org.Name = name
	org.ModifiedAt = m.now().UTC()
	if err := m.orgs.UpdateOrg(ctx, org); err != nil {
		// The entry stays: recovery records the event if the name
		// changed after all.
		return nil, fmt.Errorf("rename organization %s: %w", org.ID, err)
	}
	m.finishOperation(ctx, org.ID, ev)
	return &RenameResult{Org: org, PreviousCollection: org.TenantCollection, CurrentCollection: org.TenantCollection, DocumentsMigrated: n}, nil
}

// renaming is one RenameOrg to a new identifier past its checks: the
// record as it was and as it becomes, and the steps between.
type renaming struct {
	m        *Manager
	org      *Org
	old      Org // org as it was, for undo
	name     string
	newID    string
	from, to string // the tenant collection's old and new names
	// moved is false once the move is known not to have happened (the
	// store refused, or the target was another's), so that undo does
	// not move anything back.
	moved bool
	n     int64     // documents migrated
	undo  *undoList // the operation's, which a copying move empties
	event *Event
}

// steps are a rename's steps (see the top of this file); completion
// acknowledges the rename. What follows it is finishRename's.
func (r *renaming) steps() []step {
	return []step{
		{r.begin, r.endOperation},
		{r.reserveName, r.releaseName},
		{r.checkTarget, nil},
		{r.record, r.restoreRecord},
		{r.move, r.moveBack},
		{r.complete, nil},
	}
}

func (r *renaming) begin(ctx context.Context) error {
	return r.m.beginOperation(ctx, r.org.ID, OpRename, r.event, r.newID, r.old.Identifier)
}

func (r *renaming) endOperation(ctx context.Context) error {
	return r.m.journal.DeleteOperation(ctx, r.org.ID)
}

func (r *renaming) reserveName(ctx context.Context) error {
	err := r.m.orgs.ReserveName(ctx, r.newID, r.org.ID, r.m.now().UTC())
	if errors.Is(err, ErrConflict) {
		return nameTaken(r.name, err)
	} else if err != nil {
		return fmt.Errorf("reserve name: %w", err)
	}
	return nil
}

func (r *renaming) releaseName(ctx context.Context) error {
	return r.m.orgs.ReleaseName(ctx, r.newID, r.org.ID)
}

// checkTarget refuses a collection under the new name that no org holds
// (another application's) before anything else changes; the move itself
// would refuse it too.
func (r *renaming) checkTarget(ctx context.Context) error {
	exists, err := r.m.collections.TenantCollectionExists(ctx, r.to)
	if err != nil {
		return fmt.Errorf("rename organization %s: %w", r.org.ID, err)
	} else if exists {
		return collectionTaken(r.to, ErrConflict)
	}
	return nil
}

// record records the intent: State renaming and the Pending* fields.
func (r *renaming) record(ctx context.Context) error {
	r.org.State = OrgRenaming
	r.org.PendingName, r.org.PendingIdentifier, r.org.PendingCollection = r.name, r.newID, r.to
	r.org.ModifiedAt = r.m.now().UTC()
	if err := r.m.orgs.UpdateOrg(ctx, r.org); err != nil {
		return fmt.Errorf("record rename of organization %s: %w", r.org.ID, err)
	}
	return nil
}

// restoreRecord reads the record back, so that it restores the old names
// whether the record was left renaming or already renamed.
func (r *renaming) restoreRecord(ctx context.Context) error {
	cur, err := r.m.orgs.OrgByID(ctx, r.org.ID)
	if err != nil {
		return ignoreNotFound(err)
	}
	if cur.PendingIdentifier != r.newID && cur.Identifier != r.newID {
		return nil
	}
	restored := r.old
	restored.ModifiedAt = r.m.now().UTC()
	restored.Version = cur.Version
	return r.m.orgs.UpdateOrg(ctx, &restored)
}

// move moves the tenant collection: renameCollection, or a copy where the
// store refuses it.
func (r *renaming) move(ctx context.Context) (err error) {
	err = r.m.collections.RenameTenantCollection(ctx, r.from, r.to)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		r.moved = false
		r.m.log.InfoContext(ctx, "the store refuses to rename collections; copying the documents", "org_id", r.org.ID, "from", r.from, "to", r.to, "reason", err)
		// The target did not exist and tenant writes wait while the org
		// is renaming, so the documents copied are the target's count.
		// Past the drop of the source undo is empty: completing is left
		// to the next operation on the org, or to recovery.
		r.n, err = r.m.copyRename(ctx, r.org, r.undo)
		return err
	case errors.Is(err, ErrConflict):
		// The target was there before: nothing moved, and the
		// collection there is not ours to move.
		r.moved = false
		r.m.log.ErrorContext(ctx, "tenant collection exists without an organization holding its name", "collection", r.to, "identifier", r.newID)
		return collectionTaken(r.to, err)
	case err != nil:
		return fmt.Errorf("move tenant collection: %w", err)
	}
	// renameCollection moved every document; count them.
	if r.n, err = r.m.collections.CountTenantDocuments(ctx, r.to); err != nil {
		return fmt.Errorf("count tenant documents: %w", err)
	}
	return nil
}

// moveBack moves the collection back, if it moved and is still this
// org's: after a lost lease the name may hold a newer organization's.
func (r *renaming) moveBack(ctx context.Context) error {
	if !r.moved {
		return nil
	}
	if owner, err := r.m.collections.TenantCollectionOwner(ctx, r.to); err == nil && owner != r.org.ID {
		return nil
	}
	// Moving back a collection that never moved finds no source.
	err := r.m.collections.RenameTenantCollection(ctx, r.to, r.from)
	if errors.Is(err, ErrConflict) {
		// An overtaken write made the old name again: drop that stray
		// (we hold the name) and move back.
		if err := r.m.dropStray(ctx, r.from); err != nil {
			return err
		}
		err = r.m.collections.RenameTenantCollection(ctx, r.to, r.from)
	}
	return ignoreNotFound(err)
}

func (r *renaming) complete(ctx context.Context) error {
	return r.m.completeRename(ctx, r.org)
}

// copyRename moves org's tenant collection to its pending collection by
// copying the documents, then dropping the source, and returns the number
// of documents copied. The copy is recorded first, so that a rename found
// unfinished is copied again, not undone. Until the source is dropped the
// rename can be undone (the target is dropped); once the drop is
// attempted, copyRename sets *undo to nil.
func (m *Manager) copyRename(ctx context.Context, org *Org, undo *undoList) (int64, error) {
	from, to := org.TenantCollection, org.PendingCollection
	undo.add(func(ctx context.Context) error {
		// The target is ours: the name is reserved and it did not exist.
		return m.collections.DropTenantCollection(ctx, to)
	})
	org.PendingCopy = true
	org.ModifiedAt = m.now().UTC()
	if err := m.orgs.UpdateOrg(ctx, org); err != nil {
		return 0, fmt.Errorf("record copy of organization %s: %w", org.ID, err)
	}
	n, err := m.copyCollection(ctx, org.ID, from, to)
	if err != nil {
		return 0, err
	}
	*undo = nil
	if err := m.collections.DropTenantCollection(ctx, from); err != nil {
		return 0, fmt.Errorf("drop copied tenant collection %s: %w", from, err)
	}
	return n, nil
}

// copyCollection copies the documents of from into to, logging progress,
// and returns the number copied.
func (m *Manager) copyCollection(ctx context.Context, id OrgID, from, to string) (int64, error) {
	start := time.Now()
	last := start
	n, err := m.collections.CopyTenantDocuments(ctx, from, to, func(read int64) {
		if time.Since(last) >= 2*time.Second {
			last = time.Now()
			m.log.InfoContext(ctx, "copying tenant documents", "org_id", id, "from", from, "to", to, "copied", read)
		}
	})
	if err != nil {
		return 0, fmt.Errorf("copy tenant collection %s to %s: %w", from, to, err)
	}
	m.log.InfoContext(ctx, "copied tenant documents", "org_id", id, "from", from, "to", to, "documents", n, "took", time.Since(start).Round(time.Millisecond))
	return n, nil
}

// completeRename records org's pending names as its names.
func (m *Manager) completeRename(ctx context.Context, org *Org) error {
	copied := org.PendingCopy
	org.Name, org.Identifier, org.TenantCollection = org.PendingName, org.PendingIdentifier, org.PendingCollection
	org.PendingName, org.PendingIdentifier, org.PendingCollection, org.PendingCopy = "", "", "", false
	org.State = OrgActive
	org.ModifiedAt = m.now().UTC()
	if err := m.orgs.UpdateOrg(ctx, org); err != nil {
		return fmt.Errorf("complete rename of organization %s: %w", org.ID, err)
	}
	org.PendingCopy = copied
	return nil
}

// finishRename runs the last steps of a recorded rename of org id away
// from the old collection and identifier: it drops a collection an
// overtaken tenant write made again under the old name, while the name is
// still held, then releases the name, and reports whether both worked.
// Failures are logged: the rename is done, and recovery finishes these
// steps from the journal.
func (m *Manager) finishRename(ctx context.Context, id OrgID, from, oldID string) bool {
	if err := m.dropStray(ctx, from); err != nil {
		m.log.WarnContext(ctx, "drop collection left under the old name", "org_id", id, "collection", from, "err", err)
		// Keep the name: a stray collection under a free name would
		// block it for new organizations.
		return false
	}
	if err := m.orgs.ReleaseName(ctx, oldID, id); err != nil {
		m.log.WarnContext(ctx, "release old organization name", "org_id", id, "identifier", oldID, "err", err)
		return false
	}
	return true
}

// dropStray drops the collection name if it exists without an owner
// stamp: one made by an insert after its organization's collection moved
// away. Its caller holds the name.
func (m *Manager) dropStray(ctx context.Context, name string) error {
	exists, err := m.collections.TenantCollectionExists(ctx, name)
	if err != nil || !exists {
		return err
	}
	owner, err := m.collections.TenantCollectionOwner(ctx, name)
	switch {
	case errors.Is(err, ErrNotFound):
		m.log.InfoContext(ctx, "dropping a collection overtaken tenant writes made under a moved name", "collection", name)
		return m.collections.DropTenantCollection(ctx, name)
	case err != nil:
		return err
	}
	m.log.ErrorContext(ctx, "collection under an organization's old name belongs to another; left in place", "collection", name, "owner", owner)
	return nil
}

// errCollectionsLost reports an interrupted rename whose source and target
// collections are both gone (dropped by hand): it cannot be settled, only
// deleted.
var errCollectionsLost = fmt.Errorf("tenant collection lost; delete the organization or restore the collection: %w", ErrConflict)

// settleRename finishes or rolls back a rename that was interrupted (its
// process died, or it failed past the point it could be undone) and is
// found under the org's lock, so that no other operation runs it. A
// copying rename is copied again and completed. A rename by
// renameCollection completes if the collection moved (the target is
// stamped as org's, or only the target exists), and rolls back if it did
// not. It leaves org active.
func (m *Manager) settleRename(ctx context.Context, org *Org) error {
	from, to := org.TenantCollection, org.PendingCollection
	fromExists, err := m.collections.TenantCollectionExists(ctx, from)
	if err != nil {
		return fmt.Errorf("settle rename of organization %s: %w", org.ID, err)
	}
	toExists, err := m.collections.TenantCollectionExists(ctx, to)
	if err != nil {
		return fmt.Errorf("settle rename of organization %s: %w", org.ID, err)
	}
	// renameCollection moves the metadata document with the rest: a
	// source still stamped as this org's did not move, and a target made
	// after the rename was recorded (it was checked absent first) is the
	// moved collection. What else is under the old name was made by an
	// overtaken write.
	fromOurs := false
	if fromExists {
		owner, err := m.collections.TenantCollectionOwner(ctx, from)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("settle rename of organization %s: %w", org.ID, err)
		}
		fromOurs = err == nil && owner == org.ID
	}
	moved := toExists && !fromOurs
	oldID := org.Identifier
	switch {
	case org.PendingCopy && fromExists:
		if _, err := m.copyCollection(ctx, org.ID, from, to); err != nil {
			return fmt.Errorf("settle rename of organization %s: %w", org.ID, err)
		}
		if err := m.collections.DropTenantCollection(ctx, from); err != nil {
			return fmt.Errorf("settle rename of organization %s: %w", org.ID, err)
		}
		fallthrough
	case moved:
		if err := m.completeRename(ctx, org); err != nil {
			return fmt.Errorf("settle rename: %w", err)
		}
		org.PendingCopy = false
		m.finishRename(ctx, org.ID, from, oldID)
	case fromExists:
		release := org.PendingIdentifier
		org.PendingName, org.PendingIdentifier, org.PendingCollection = "", "", ""
		org.State = OrgActive
		org.ModifiedAt = m.now().UTC()
		if err := m.orgs.UpdateOrg(ctx, org); err != nil {
			return fmt.Errorf("settle rename of organization %s: %w", org.ID, err)
		}
		if err := m.orgs.ReleaseName(ctx, release, org.ID); err != nil {
			return fmt.Errorf("settle rename of organization %s: release %q: %w", org.ID, release, err)
		}
	default:
		return fmt.Errorf("organization %s: %s and %s are both missing after an interrupted rename: %w",
			org.ID, from, to, errCollectionsLost)
	}
	m.log.WarnContext(ctx, "settled an interrupted rename", "org_id", org.ID, "identifier", org.Identifier, "completed", org.Identifier != oldID)
	return nil
}
