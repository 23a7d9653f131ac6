package tenancy

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Naming limits.
const (
	// MaxNameLength is the longest organization name, in characters.
	MaxNameLength = 100
	// MaxIdentifierLength is the longest identifier, in bytes. It keeps the
	// tenant collection name (at most 7+MaxIdentifierLength bytes) and the
	// full namespace "<database>.<collection>" within MongoDB's 255 bytes
	// for any valid database name (at most 63 bytes).
	MaxIdentifierLength = 120
	// TenantCollectionPrefix starts every tenant collection name.
	TenantCollectionPrefix = "tenant_"
)

// OrgByName returns the active organization whose name has the same identifier
// as name. It returns a *ValidationError if name cannot be an organization
// name and ErrNotFound if there is no such organization. It takes one
// database round trip (two to not find a name whose earlier identifier
// differs; see earlierIdentifier).
func (m *Manager) OrgByName(ctx context.Context, name string) (*Org, error) {
	_, id, msg := identifier(name)
	if msg != "" {
		return nil, &ValidationError{Fields: []FieldError{{Field: "organization_name", Message: msg}}}
	}
	org, err := m.orgByName(ctx, name, id)
	if err != nil {
		return nil, fmt.Errorf("organization %q: %w", name, err)
	}
	if org = m.settledView(ctx, org); !org.visible() {
		return nil, fmt.Errorf("organization %q: %w", name, ErrNotFound)
	}
	return org, nil
}

// orgByName returns the org record of name, whose identifier is id:
// the one holding id, or else one created under the name's earlier
// identifier (see earlierIdentifier).
func (m *Manager) orgByName(ctx context.Context, name, id string) (*Org, error) {
	org, err := m.reads.OrgByIdentifier(ctx, id)
	if errors.Is(err, ErrNotFound) {
		if old := earlierIdentifier(name, id); old != "" {
			return m.reads.OrgByIdentifier(ctx, old)
		}
	}
	return org, err
}

// earlierNameTaken returns a conflict if an organization other than self
// holds name's earlier identifier (see earlierIdentifier).
func (m *Manager) earlierNameTaken(ctx context.Context, name, id string, self OrgID) error {
	old := earlierIdentifier(name, id)
	if old == "" {
		return nil
	}
	org, err := m.orgs.OrgByIdentifier(ctx, old)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("look up organization %q: %w", name, err)
	case org.ID == self:
		return nil
	}
	return nameTaken(strings.TrimSpace(name), ErrConflict)
}

// OrgByID returns the active organization with id, or ErrNotFound.
func (m *Manager) OrgByID(ctx context.Context, id OrgID) (*Org, error) {
	org, err := m.reads.OrgByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("organization %s: %w", id, err)
	}
	if org = m.settledView(ctx, org); !org.visible() {
		return nil, fmt.Errorf("organization %s: %w", id, ErrNotFound)
	}
	return org, nil
}

// settledView returns org as readers should see it. An org found
// renaming whose operation's lease ran out (its process died) is settled
// first, so that it answers with the collection that holds its documents;
// one whose operation is live, or that cannot be settled now, is returned
// as read: the rename is not acknowledged yet.
func (m *Manager) settledView(ctx context.Context, org *Org) *Org {
	if org.State != OrgRenaming {
		return org
	}
	m.dropCached(org.ID)
	var rep RecoveryReport
	if err := m.lockedRecoverOrg(ctx, org.ID, &rep); err != nil {
		return org
	}
	now, err := m.orgs.OrgByID(ctx, org.ID)
	if err != nil {
		return &Org{ID: org.ID, State: OrgDeleting} // gone meanwhile: not visible
	}
	return now
}

// visible reports whether the org exists for readers: it has been created
// and is not being deleted.
func (o *Org) visible() bool { return o.State == OrgActive || o.State == OrgRenaming }

// DeleteOrg deletes the organization id with its memberships, its
// invitations, the accounts that belong to no other organization, its
// tenant collection and all of its data. The accounts that belong to
// other organizations keep those memberships. It returns ErrNotFound if there is no
// such organization and ErrConflict if another operation on it is in
// progress.
func (m *Manager) DeleteOrg(ctx context.Context, id OrgID) error {
	return m.deleteOrg(ctx, id, nil)
}

// DeleteOrgAs is DeleteOrg of the organization of claims, by its caller:
// the caller's role, read under the organization's lock, must have
// PermDeleteOrg (ErrForbidden otherwise; ErrUnauthenticated if it is no
// longer a member).
func (m *Manager) DeleteOrgAs(ctx context.Context, claims *Claims) error {
	if claims == nil {
		return fmt.Errorf("no claims: %w", ErrUnauthenticated)
	}
	return m.deleteOrg(withActor(ctx, claims), claims.OrgID, m.permitted(claims, PermDeleteOrg))
}

func (m *Manager) deleteOrg(ctx context.Context, id OrgID, check func(context.Context) error) (err error) {
	ctx, done := m.begin(ctx, "delete")
	defer done(&err)
	ctx, unlock, err := m.lockOrg(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	defer func() { err = m.leaseError(ctx, err) }()
	// What a dead process left in the journal first: its entry is this
	// organization's one, which this deletion's would replace. A
	// deletion left unfinished is finished so: this one's work is done.
	var rep RecoveryReport
	if err := m.settleEntry(ctx, id, &rep); err != nil {
		return err
	}
	if rep.DeletesCompleted > 0 {
		return nil
	}
	if check != nil {
		if err := check(ctx); err != nil {
			return err
		}
	}
	org, err := m.orgs.OrgByID(ctx, id)
	if err != nil {
		return fmt.Errorf("organization %s: %w", id, err)
	}
	return m.deleteLocked(ctx, org, nil)
}

// deleteLocked runs or finishes the deletion of org, whose lock the caller
// holds. A deletion it begins, or one without a journal entry (ev nil),
// it ends by recording its event; the deletion of a journal entry, whose
// event is ev, is left for the caller (settleEntry) to record and end, so
// that the entry holds the event until it is recorded.
func (m *Manager) deleteLocked(ctx context.Context, org *Org, ev *Event) error {
	id := org.ID
	finish := ev == nil
	if ev == nil {
		ev = m.newEvent(EventOrgDeleted, id, actorOf(ctx), map[string]any{
			"organization_name": org.Name, "organization_identifier": org.Identifier, "tenant_collection": org.TenantCollection,
		})
	}
	if org.State == OrgRenaming {
		err := m.settleRename(ctx, org)
		switch {
		case errors.Is(err, errCollectionsLost):
			// Nothing to move: delete what is left, and free the
			// rename's target name too.
			if err := m.orgs.ReleaseName(ctx, org.PendingIdentifier, id); err != nil {
				return fmt.Errorf("release name of organization %s: %w", id, err)
			}
		case err != nil:
			return err
		}
	}
	switch org.State {
	case OrgActive, OrgRenaming:
		finish = true
		if err := m.beginOperation(ctx, id, OpDelete, ev, org.Identifier); err != nil {
			return err
		}
		org.State = OrgDeleting
		org.ModifiedAt = m.now().UTC()
		if err := m.orgs.UpdateOrg(ctx, org); err != nil {
			// Recovery finds the entry and, if the deletion was
			// recorded after all, completes it.
			return fmt.Errorf("record deletion of organization %s: %w", id, err)
		}
	case OrgDeleting:
		// A deletion was interrupted: finish it.
	case OrgCreating:
		return fmt.Errorf("organization %s: %w", id, ErrNotFound)
	default:
		return fmt.Errorf("organization %s is %s: %w", id, org.State, ErrConflict)
	}
	// Members first, so that no new token is issued for a vanishing org;
	// the name only once the data is gone.
	if err := m.removeAllMembers(ctx, org); err != nil {
		return fmt.Errorf("remove members of organization %s: %w", id, err)
	}
	if err := m.dropOwnCollection(ctx, org, true); err != nil {
		return fmt.Errorf("drop tenant collection %s: %w", org.TenantCollection, err)
	}
	// The name is released before the record goes, so that a retry
	// still finds the record and finishes the job.
	if err := m.orgs.ReleaseName(ctx, org.Identifier, id); err != nil {
		return fmt.Errorf("release name of organization %s: %w", id, err)
	}
	if err := ignoreNotFound(m.orgs.DeleteOrg(ctx, id)); err != nil {
		return fmt.Errorf("delete organization %s: %w", id, err)
	}
	if finish {
		m.finishOperation(ctx, id, ev)
	}
	m.log.InfoContext(ctx, "organization deleted", "org_id", id, "identifier", org.Identifier)
	return nil
}

// removeAllMembers removes every member of org being deleted, deleting
// the accounts that belong to no other organization, and then its
// invitations. It is safe to run again.
func (m *Manager) removeAllMembers(ctx context.Context, org *Org) error {
	// The primary owner first: an organization from before memberships
	// has no record of it.
	if err := m.leave(ctx, org.ID, org.AdminID); err != nil {
		return err
	}
	for {
		page, err := m.members.OrgMembers(ctx, org.ID, "", 100)
		if err != nil {
			return fmt.Errorf("list members: %w", err)
		}
		for _, mb := range page {
			if err := m.leave(ctx, org.ID, mb.AdminID); err != nil {
				return err
			}
		}
		if len(page) < 100 {
			break
		}
	}
	invs, err := m.invitations.OrgInvitations(ctx, org.ID)
	if err != nil {
		return fmt.Errorf("list invitations: %w", err)
	}
	for _, inv := range invs {
		if err := ignoreNotFound(m.invitations.DeleteInvitation(ctx, inv.ID)); err != nil {
			return fmt.Errorf("delete invitation: %w", err)
		}
	}
	return nil
}

// rollbackCreate undoes an unfinished creation. It drops the tenant
// collection only if this organization created it.
func (m *Manager) rollbackCreate(ctx context.Context, org *Org) error {
	// Claim the record first: a create that was only stalled, not dead,
	// then fails its version-checked activation instead of succeeding
	// over a half-removed org.
	org.ModifiedAt = m.now().UTC()
	if err := m.orgs.UpdateOrg(ctx, org); err != nil {
		return fmt.Errorf("roll back creation of %s: %w", org.ID, err)
	}
	if err := ignoreNotFound(m.members.DeleteMembership(ctx, org.ID, org.AdminID)); err != nil {
		return fmt.Errorf("roll back creation of %s: %w", org.ID, err)
	}
	if err := ignoreNotFound(m.admins.DeleteAdmin(ctx, org.AdminID)); err != nil {
		return fmt.Errorf("roll back creation of %s: %w", org.ID, err)
	}
	if err := m.dropOwnCollection(ctx, org, false); err != nil {
		return fmt.Errorf("roll back creation of %s: %w", org.ID, err)
	}
	if err := m.orgs.ReleaseName(ctx, org.Identifier, org.ID); err != nil {
		return fmt.Errorf("roll back creation of %s: %w", org.ID, err)
	}
	return ignoreNotFound(m.orgs.DeleteOrg(ctx, org.ID))
}

// dropOwnCollection drops org's tenant collection unless its metadata
// says another organization owns it: a collection that was there before
// (another application's) or one a newer organization of the same name
// created after this one's lease ran out. A collection without the stamp
// is dropped with unstamped (an active org's collection may predate
// stamps), or if it is empty: an unfinished create that finds one with
// documents but no stamp did not make it, but one whose process died
// between creating its collection and stamping it left it empty.
func (m *Manager) dropOwnCollection(ctx context.Context, org *Org, unstamped bool) error {
	owner, err := m.collections.TenantCollectionOwner(ctx, org.TenantCollection)
	switch {
	case errors.Is(err, ErrNotFound) && unstamped:
	case errors.Is(err, ErrNotFound):
		n, err := m.collections.CountTenantDocuments(ctx, org.TenantCollection)
		if err != nil || n > 0 {
			return err
		}
	case err != nil:
		return err
	case owner != org.ID:
		m.log.ErrorContext(ctx, "tenant collection belongs to another organization; left in place",
			"org_id", org.ID, "collection", org.TenantCollection, "owner", owner)
		return nil
	}
	return m.collections.DropTenantCollection(ctx, org.TenantCollection)
}

func nameTaken(name string, err error) error {
	return &ConflictError{Field: "organization_name", Message: fmt.Sprintf("%q is already taken (names differing only in case, spaces, punctuation, invisible characters or look-alike letters are the same)", name), Err: err}
}

// collectionTaken reports a name whose tenant collection exists in the
// database without belonging to an organization (left by another
// application, or restored from a backup): the name cannot be used until
// an operator removes or renames that collection.
func collectionTaken(collection string, err error) error {
	return &ConflictError{Field: "organization_name", Message: fmt.Sprintf("cannot be used: its tenant collection %s already exists in the database", collection), Err: err}
}

func ignoreNotFound(err error) error {
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
