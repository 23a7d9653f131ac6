package tenancy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Member is a member of an organization as listings show it.
type Member struct {
	AdminID  AdminID
	Email    string
	Role     Role
	JoinedAt time.Time
}

func memberOf(mb *Membership) Member {
	return Member{AdminID: mb.AdminID, Email: mb.Email, Role: mb.Role, JoinedAt: mb.JoinedAt}
}

// membership returns the membership of admin in org as it is in the
// store. An organization's primary owner whose membership record is
// missing (an organization created before memberships existed) is its
// owner.
func (m *Manager) membership(ctx context.Context, org *Org, admin AdminID) (*Membership, error) {
	mb, err := m.members.Membership(ctx, org.ID, admin)
	if errors.Is(err, ErrNotFound) && org.AdminID == admin {
		return &Membership{OrgID: org.ID, AdminID: admin, Email: org.AdminEmail, Role: RoleOwner, JoinedAt: org.CreatedAt}, nil
	}
	return mb, err
}

// actor returns the organization of claims and the caller's membership
// in it, read from the store under the organization's lock. A caller
// who is no longer a member, or whose organization is gone, gets
// ErrUnauthenticated, as AuthenticateToken would answer.
func (m *Manager) actor(ctx context.Context, claims *Claims) (*Org, *Membership, error) {
	if claims == nil {
		return nil, nil, fmt.Errorf("no claims: %w", ErrUnauthenticated)
	}
	org, err := m.orgs.OrgByID(ctx, claims.OrgID)
	switch {
	case errors.Is(err, ErrNotFound) || err == nil && !org.visible():
		return nil, nil, fmt.Errorf("organization of this token no longer exists: %w", ErrUnauthenticated)
	case err != nil:
		return nil, nil, fmt.Errorf("look up organization: %w", err)
	}
	me, err := m.membership(ctx, org, claims.AdminID)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil, fmt.Errorf("not a member of this organization any more: %w", ErrUnauthenticated)
	case err != nil:
		return nil, nil, fmt.Errorf("look up membership: %w", err)
	}
	return org, me, nil
}

func forbidden(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrForbidden)
}

// Members returns up to limit (1 to MaxListLimit) members of the
// organization of claims in the order of their ids, starting after the
// id after ("" for the first page), and the after of the next page (""
// on the last). Every role may list. It costs one read of the
// memberships; on FerretDB that reads all of them.
func (m *Manager) Members(ctx context.Context, claims *Claims, after AdminID, limit int) ([]Member, AdminID, error) {
	if limit < 1 || limit > MaxListLimit {
		return nil, "", &ValidationError{Fields: []FieldError{{Field: "limit", Message: fmt.Sprintf("must be between 1 and %d", MaxListLimit)}}}
	}
	if !claims.Can(PermListMembers) {
		return nil, "", forbidden("role %q may not list members", claims.Role)
	}
	page, err := m.members.OrgMembers(ctx, claims.OrgID, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list members: %w", err)
	}
	var next AdminID
	if len(page) > limit {
		page, next = page[:limit], page[limit-1].AdminID
	}
	out := make([]Member, len(page))
	for i, mb := range page {
		out[i] = memberOf(mb)
	}
	return out, next, nil
}

// ChangeRole gives the member admin of the organization of claims the
// role role. An owner may give any role to anyone; an admin may move
// admins and members between those two roles; a member may not
// (ErrForbidden). It returns ErrNotFound if admin is not a member, and
// a *ConflictError if the change would leave the organization without
// an owner, or demote its primary owner (transfer primary ownership
// first). Role changes of one organization are serialized by its lock,
// so two owners demoting each other at once leave one owner.
func (m *Manager) ChangeRole(ctx context.Context, claims *Claims, admin AdminID, role Role) (_ *Member, err error) {
	ctx, done := m.begin(ctx, "change_role")
	defer done(&err)
	if !role.Valid() {
		_, err := ParseRole("role", string(role))
		return nil, err
	}
	if err := m.precheckTarget(ctx, claims, admin, claims.Can(PermChangeRoles)); err != nil {
		return nil, err
	}
	ctx, unlock, err := m.lockWait(ctx, claims.OrgID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	defer func() { err = m.leaseError(ctx, err) }()
	org, me, err := m.actor(ctx, claims)
	if err != nil {
		return nil, err
	}
	target, err := m.membership(ctx, org, admin)
	if err != nil {
		return nil, fmt.Errorf("member %s: %w", admin, err)
	}
	if me.Role != RoleOwner && (target.Role == RoleOwner || role == RoleOwner) {
		return nil, forbidden("only an owner may change the role of an owner or make one")
	}
	if !me.Role.Can(PermChangeRoles) {
		return nil, forbidden("role %q may not change roles", me.Role)
	}
	if target.Role == RoleOwner && role != RoleOwner {
		if err := m.canLoseOwner(ctx, org, admin); err != nil {
			return nil, err
		}
	}
	if target.Role != role {
		ev := m.newEvent(EventMemberRoleChanged, org.ID, claims.AdminID, map[string]any{
			"admin_id": string(admin), "email": target.Email, "previous_role": string(target.Role), "role": string(role),
		})
		if err := m.journal.PutOperation(ctx, &Operation{OrgID: org.ID, Kind: OpChangeRole, AdminID: admin, Started: m.stamp(), Event: ev}); err != nil {
			return nil, fmt.Errorf("record role change in the journal: %w", err)
		}
		if err := m.members.SetMemberRole(ctx, org.ID, admin, role); err != nil {
			// The entry stays: recovery records the event if the role
			// changed after all.
			return nil, fmt.Errorf("set role: %w", err)
		}
		m.finishOperation(ctx, org.ID, ev)
		target.Role = role
	}
	m.log.InfoContext(ctx, "member role changed", "org_id", org.ID, "admin_id", admin, "role", role, "by", claims.AdminID)
	out := memberOf(target)
	return &out, nil
}

// precheckTarget refuses, before the organization's lock is taken, what
// the caller of claims may not do (allowed false: ErrForbidden) and a
// target admin that is no member (ErrNotFound), so that requests bound to
// fail do not hold the lock that other operations wait for. The checks
// are made again under the lock.
func (m *Manager) precheckTarget(ctx context.Context, claims *Claims, admin AdminID, allowed bool) error {
	if !allowed {
		return forbidden("role %q may not do this", claims.Role)
	}
	_, err := m.members.Membership(ctx, claims.OrgID, admin)
	if errors.Is(err, ErrNotFound) {
		// Perhaps the primary owner of an organization from before
		// memberships: the check under the lock decides.
		org, oerr := m.orgs.OrgByID(ctx, claims.OrgID)
		if oerr == nil && org.AdminID == admin {
			return nil
		}
		return fmt.Errorf("member %s: %w", admin, err)
	}
	return nil // a store failure is left to the check under the lock
}

// canLoseOwner returns a *ConflictError if admin, an owner of org, may
// not stop being one: it is the primary owner, or the last owner.
func (m *Manager) canLoseOwner(ctx context.Context, org *Org, admin AdminID) error {
	if org.AdminID == admin {
		return &ConflictError{Field: "admin_id", Message: "is the primary owner: transfer primary ownership first", Err: ErrConflict}
	}
	owners, err := m.countOwners(ctx, org)
	if err != nil {
		return err
	}
	if owners <= 1 {
		return &ConflictError{Field: "admin_id", Message: "is the last owner: the organization would have none", Err: ErrConflict}
	}
	return nil
}

// countOwners counts the owners of org.
func (m *Manager) countOwners(ctx context.Context, org *Org) (int, error) {
	n := 0
	var after AdminID
	for {
		page, err := m.members.OrgMembers(ctx, org.ID, after, 1000)
		if err != nil {
			return 0, fmt.Errorf("count owners: %w", err)
		}
		for _, mb := range page {
			if mb.Role == RoleOwner {
				n++
			}
		}
		if len(page) < 1000 {
			return n, nil
		}
		after = page[len(page)-1].AdminID
	}
}

// RemoveMember removes the member admin from the organization of claims.
// An owner may remove anyone but the last owner and the primary owner
// (ConflictError); an admin may remove admins and members; anyone may
// remove itself. The removed member's tokens for the organization fail
// AuthenticateToken at once; an account left in no organization is
// deleted, and one whose home organization this was gets its oldest
// other membership as home. The removal is journaled: a process that
// dies midway leaves it to recovery, which completes it.
func (m *Manager) RemoveMember(ctx context.Context, claims *Claims, admin AdminID) (err error) {
	ctx, done := m.begin(ctx, "remove_member")
	defer done(&err)
	if claims == nil {
		return fmt.Errorf("no claims: %w", ErrUnauthenticated)
	}
	if err := m.precheckTarget(ctx, claims, admin, admin == claims.AdminID || claims.Can(PermRemoveMembers)); err != nil {
		return err
	}
	ctx, unlock, err := m.lockWait(ctx, claims.OrgID)
	if err != nil {
		return err
	}
	defer unlock()
	defer func() { err = m.leaseError(ctx, err) }()
	org, me, err := m.actor(ctx, claims)
	if err != nil {
		return err
	}
	target, err := m.membership(ctx, org, admin)
	if err != nil {
		return fmt.Errorf("member %s: %w", admin, err)
	}
	switch {
	case admin == me.AdminID:
	case !me.Role.Can(PermRemoveMembers):
		return forbidden("a member may remove only itself")
	case target.Role == RoleOwner && me.Role != RoleOwner:
		return forbidden("only an owner may remove an owner")
	}
	if target.Role == RoleOwner {
		if err := m.canLoseOwner(ctx, org, admin); err != nil {
			return err
		}
	}
	// The account's lock before the journal entry, so that a busy
	// account refuses the removal instead of leaving it to recovery.
	actx, unlockAccount, err := m.lockAccount(ctx, admin)
	if err != nil {
		return err
	}
	defer unlockAccount()
	ctx = actx
	ev := m.newEvent(EventMemberRemoved, org.ID, claims.AdminID, map[string]any{
		"admin_id": string(admin), "email": target.Email, "role": string(target.Role),
	})
	if err := m.journal.PutOperation(ctx, &Operation{OrgID: org.ID, Kind: OpRemoveMember, AdminID: admin, Started: m.stamp(), Event: ev}); err != nil {
		return fmt.Errorf("record removal in the journal: %w", err)
	}
	if err := m.leaveLocked(ctx, org.ID, admin); err != nil {
		return err
	}
	m.finishOperation(ctx, org.ID, ev)
	m.log.InfoContext(ctx, "member removed", "org_id", org.ID, "admin_id", admin, "by", claims.AdminID)
	return nil
}

// stamp is the Manager's time as stores keep it (milliseconds), so that
// a record written with it compares equal once read back.
func (m *Manager) stamp() time.Time { return m.now().UTC().Truncate(time.Millisecond) }

// leave takes the account admin out of org (see leaveLocked) under the
// account's lock, so that an invitation accepted in another organization
// at the same time is not lost with a deleted account. The caller holds
// org's lock.
func (m *Manager) leave(ctx context.Context, org OrgID, admin AdminID) error {
	actx, unlock, err := m.lockAccount(ctx, admin)
	if err != nil {
		return err
	}
	defer unlock()
	return m.leaveLocked(actx, org, admin)
}

// leaveLocked takes the account admin out of org: its account is settled
// first (deleted if it belongs nowhere else, given another home if this
// was its home), then the membership goes, so that a retry still finds
// the membership and settles the account again. It is safe to run again
// after any failure. The caller holds the locks of org and of the
// account.
func (m *Manager) leaveLocked(ctx context.Context, org OrgID, admin AdminID) error {
	all, err := m.members.AdminMemberships(ctx, admin)
	if err != nil {
		return fmt.Errorf("list memberships of %s: %w", admin, err)
	}
	others := slices.DeleteFunc(all, func(mb *Membership) bool { return mb.OrgID == org })
	account, err := m.admins.AdminByID(ctx, admin)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return fmt.Errorf("look up account %s: %w", admin, err)
	case len(others) == 0:
		// The primary owner of an organization from before memberships
		// has no record of it: it keeps its account, and gets the record.
		kept, err := m.keepLegacyOwner(ctx, account, org)
		if err != nil {
			return err
		}
		if !kept {
			if err := ignoreNotFound(m.admins.DeleteAdmin(ctx, admin)); err != nil {
				return fmt.Errorf("delete account %s: %w", admin, err)
			}
		}
	case account.OrgID == org:
		if err := m.admins.SetAdminHome(ctx, admin, others[0].OrgID); err != nil {
			return fmt.Errorf("move home of account %s: %w", admin, err)
		}
	}
	if err := ignoreNotFound(m.members.DeleteMembership(ctx, org, admin)); err != nil {
		return fmt.Errorf("remove membership: %w", err)
	}
	return nil
}

// keepLegacyOwner reports whether account, leaving the organization
// leaving, is the primary owner of another, its home, without a
// membership record of it (an organization created before memberships),
// and if so writes that record.
func (m *Manager) keepLegacyOwner(ctx context.Context, account *Admin, leaving OrgID) (bool, error) {
	if account.OrgID == leaving {
		return false, nil
	}
	home, err := m.orgs.OrgByID(ctx, account.OrgID)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("look up organization %s: %w", account.OrgID, err)
	case home.AdminID != account.ID || home.State == OrgDeleting:
		return false, nil
	}
	err = m.members.AddMembership(ctx, &Membership{OrgID: home.ID, AdminID: account.ID, Email: account.Email, Role: RoleOwner, JoinedAt: home.CreatedAt})
	if err != nil && !errors.Is(err, ErrConflict) {
		return false, fmt.Errorf("record the primary owner of %s: %w", home.ID, err)
	}
	return true, nil
}

// TransferOwnership makes the member admin the primary owner of the
// organization of claims (Org.AdminID and AdminEmail), and an owner if it
// was not. Only the primary owner may (ErrForbidden), who stays an owner.
// It returns ErrNotFound if admin is not a member. It is journaled, and
// recovery completes it.
func (m *Manager) TransferOwnership(ctx context.Context, claims *Claims, admin AdminID) (_ *Org, err error) {
	ctx, done := m.begin(ctx, "transfer")
	defer done(&err)
	if !claims.Can(PermTransferOwnership) {
		return nil, forbidden("only the primary owner may transfer primary ownership")
	}
	ctx, unlock, err := m.lockWait(ctx, claims.OrgID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	defer func() { err = m.leaseError(ctx, err) }()
	org, _, err := m.actor(ctx, claims)
	if err != nil {
		return nil, err
	}
	if org.AdminID != claims.AdminID {
		return nil, forbidden("only the primary owner may transfer primary ownership")
	}
	if org.State != OrgActive {
		return nil, fmt.Errorf("organization %s is %s: %w", org.ID, org.State, ErrConflict)
	}
	target, err := m.membership(ctx, org, admin)
	if err != nil {
		return nil, fmt.Errorf("member %s: %w", admin, err)
	}
	if admin == org.AdminID {
		return org, nil
	}
	ev := m.newEvent(EventOwnershipTransferred, org.ID, claims.AdminID, map[string]any{
		"previous_admin_id": string(org.AdminID), "previous_admin_email": org.AdminEmail,
		"admin_id": string(admin), "admin_email": target.Email,
	})
	if err := m.journal.PutOperation(ctx, &Operation{OrgID: org.ID, Kind: OpTransfer, AdminID: admin, Started: m.stamp(), Event: ev}); err != nil {
		return nil, fmt.Errorf("record transfer in the journal: %w", err)
	}
	if org, err = m.transfer(ctx, org, admin); err != nil {
		return nil, err
	}
	m.finishOperation(ctx, org.ID, ev)
	m.log.InfoContext(ctx, "primary ownership transferred", "org_id", org.ID, "admin_id", admin, "by", claims.AdminID)
	return org, nil
}

// transfer makes admin an owner of org, then its primary owner. It is
// safe to run again. The caller holds org's lock.
func (m *Manager) transfer(ctx context.Context, org *Org, admin AdminID) (*Org, error) {
	mb, err := m.members.Membership(ctx, org.ID, admin)
	if err != nil {
		return nil, fmt.Errorf("member %s: %w", admin, err)
	}
	if mb.Role != RoleOwner {
		if err := m.members.SetMemberRole(ctx, org.ID, admin, RoleOwner); err != nil {
			return nil, fmt.Errorf("make %s an owner: %w", admin, err)
		}
	}
	if org.AdminID == admin {
		return org, nil
	}
	if _, err := m.members.Membership(ctx, org.ID, org.AdminID); errors.Is(err, ErrNotFound) {
		// The primary owner of an organization from before memberships:
		// it stays an owner, now on record.
		err = m.members.AddMembership(ctx, &Membership{OrgID: org.ID, AdminID: org.AdminID, Email: org.AdminEmail, Role: RoleOwner, JoinedAt: org.CreatedAt})
		if err != nil && !errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("record the primary owner: %w", err)
		}
	}
	org.AdminID, org.AdminEmail = admin, mb.Email
	org.ModifiedAt = m.now().UTC()
	if err := m.orgs.UpdateOrg(ctx, org); err != nil {
		return nil, fmt.Errorf("record the new primary owner: %w", err)
	}
	return org, nil
}

// settleMemberOperation finishes or rolls back the member operation op
// of a process that died; the caller holds the organization's lock.
func (m *Manager) settleMemberOperation(ctx context.Context, op *Operation) error {
	switch op.Kind {
	case OpAccept:
		return m.settleAccept(ctx, op)
	case OpRemoveMember:
		return m.leave(ctx, op.OrgID, op.AdminID)
	case OpTransfer:
		org, err := m.orgs.OrgByID(ctx, op.OrgID)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = m.transfer(ctx, org, op.AdminID)
		if errors.Is(err, ErrNotFound) {
			return nil // the member is gone: nothing to transfer to
		}
		return err
	}
	return nil
}

// isMemberOperation reports whether kind is one of the member operations.
func isMemberOperation(kind string) bool {
	return kind == OpAccept || kind == OpRemoveMember || kind == OpTransfer
}
