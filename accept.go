package tenancy

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"
)

// AcceptInvitation makes the invitee of token a member of the inviting
// organization and returns its token for that organization. For an email
// without an account it creates the account with password; for an
// existing account password must be that account's (ErrUnauthenticated
// otherwise, counted towards its back-off as a failed login is). A
// token that is malformed, unknown, used, revoked or expired gives
// ErrNotFound; a bad password a *ValidationError. Two accepts of one
// invitation have one winner. The accept is journaled: a process that
// dies midway leaves it to recovery, which rolls it back unless the
// invitation was already used up (the acknowledgement).
func (m *Manager) AcceptInvitation(ctx context.Context, token, password string) (_ *Token, err error) {
	ctx, done := m.begin(ctx, "accept_invitation")
	defer done(&err)
	if err := CheckPassword(password); err != nil {
		return nil, err
	}
	id, hash, ok := splitInvitationToken(token)
	if !ok {
		return nil, errNoInvitation
	}
	inv, err := m.validInvitation(ctx, id, hash)
	if err != nil {
		return nil, err
	}
	// The password is checked or hashed before the lock, which bcrypt
	// would otherwise hold for its whole run.
	account, err := m.admins.AdminByEmail(ctx, inv.Email)
	var newHash []byte
	switch {
	case errors.Is(err, ErrNotFound):
		account = nil
		if newHash, err = m.hashPassword(ctx, password); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("look up account: %w", err)
	default:
		ok, err := m.checkCounted(ctx, account.Email, true, account.PasswordHash, account.FailedLogins, account.LastFailedLogin, password)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("incorrect password for the existing account of %s: %w", inv.Email, ErrUnauthenticated)
		}
	}
	a := &acceptance{m: m, inv: inv, account: account, hash: newHash}
	return a.run(ctx)
}

// validInvitation returns the invitation id if hash is its token's and it
// has not expired; errNoInvitation otherwise. The hashes are compared in
// constant time.
func (m *Manager) validInvitation(ctx context.Context, id string, hash []byte) (*Invitation, error) {
	inv, err := m.invitations.Invitation(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, errNoInvitation
	case err != nil:
		return nil, fmt.Errorf("look up invitation: %w", err)
	case subtle.ConstantTimeCompare(inv.TokenHash, hash) != 1 || !inv.ExpiresAt.After(m.now()):
		return nil, errNoInvitation
	}
	return inv, nil
}

// acceptance is one AcceptInvitation past its password check.
type acceptance struct {
	m       *Manager
	inv     *Invitation
	account *Admin // nil: a new account, with hash
	hash    []byte
	mb      *Membership
	started time.Time
	event   *Event
}

func (a *acceptance) run(ctx context.Context) (_ *Token, err error) {
	m := a.m
	ctx, unlock, err := m.lockWait(ctx, a.inv.OrgID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	defer func() { err = m.leaseError(ctx, err) }()
	// Again under the lock: one of two accepts finds it gone.
	if _, err := m.validInvitation(ctx, a.inv.ID, a.inv.TokenHash); err != nil {
		return nil, err
	}
	org, err := m.orgs.OrgByID(ctx, a.inv.OrgID)
	if errors.Is(err, ErrNotFound) || err == nil && !org.visible() {
		return nil, errNoInvitation
	}
	if err != nil {
		return nil, fmt.Errorf("look up organization: %w", err)
	}
	a.started = m.stamp()
	if a.account == nil {
		a.account = &Admin{ID: AdminID(newObjectID(a.started)), Email: a.inv.Email, PasswordHash: a.hash, OrgID: a.inv.OrgID, CreatedAt: a.started}
	}
	// Lock the account too: its memberships change only under its lock,
	// so that removing it from its last other organization cannot delete
	// it under this membership.
	actx, unlockAccount, err := m.lockAccount(ctx, a.account.ID)
	if err != nil {
		return nil, err
	}
	defer unlockAccount()
	ctx = actx
	if a.hash == nil {
		a.account, err = m.admins.AdminByID(ctx, a.account.ID)
		if errors.Is(err, ErrNotFound) {
			return nil, &ConflictError{Field: "email", Message: "lost its account to a removal meanwhile; accept again", Err: err}
		} else if err != nil {
			return nil, fmt.Errorf("look up account: %w", err)
		}
	}
	var undo undoList
	if err := m.runSteps(ctx, "accept invitation", org.ID, &undo, a.steps()...); err != nil {
		return nil, err
	}
	m.finishOperation(ctx, org.ID, a.event)
	m.log.InfoContext(ctx, "invitation accepted", "org_id", org.ID, "admin_id", a.mb.AdminID, "role", a.mb.Role)
	return m.IssueToken(a.account, a.mb)
}

// steps are an accept's steps: the journal entry, the account (if new),
// the membership, and the invitation's removal, which acknowledges it.
func (a *acceptance) steps() []step {
	return []step{
		{a.begin, a.endOperation},
		{a.createAccount, a.deleteAccount},
		{a.addMembership, a.removeMembership},
		{a.useInvitation, nil},
	}
}

func (a *acceptance) begin(ctx context.Context) error {
	a.mb = &Membership{OrgID: a.inv.OrgID, AdminID: a.account.ID, Email: a.account.Email, Role: a.inv.Role, JoinedAt: a.started}
	a.event = a.m.newEvent(EventMemberJoined, a.inv.OrgID, a.account.ID, map[string]any{
		"admin_id": string(a.account.ID), "email": a.account.Email, "role": string(a.inv.Role),
		"invitation_id": a.inv.ID, "new_account": a.hash != nil,
	})
	op := &Operation{OrgID: a.inv.OrgID, Kind: OpAccept, AdminID: a.account.ID, Invitation: a.inv.ID, Started: a.started, Event: a.event}
	if err := a.m.journal.PutOperation(ctx, op); err != nil {
		return fmt.Errorf("record accept in the journal: %w", err)
	}
	return nil
}

func (a *acceptance) endOperation(ctx context.Context) error {
	return a.m.journal.DeleteOperation(ctx, a.inv.OrgID)
}

func (a *acceptance) createAccount(ctx context.Context) error {
	if a.hash == nil {
		return nil
	}
	err := a.m.admins.CreateAdmin(ctx, a.account)
	if errors.Is(err, ErrConflict) {
		a.hash = nil // not ours: undo leaves it
		return &ConflictError{Field: "email", Message: "got an account meanwhile; accept again with its password", Err: err}
	}
	if err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	return nil
}

func (a *acceptance) deleteAccount(ctx context.Context) error {
	if a.hash == nil {
		return nil
	}
	return ignoreNotFound(a.m.admins.DeleteAdmin(ctx, a.account.ID))
}

func (a *acceptance) addMembership(ctx context.Context) error {
	err := a.m.members.AddMembership(ctx, a.mb)
	if errors.Is(err, ErrConflict) {
		a.mb = nil // not ours: undo leaves it
		if derr := ignoreNotFound(a.m.invitations.DeleteInvitation(ctx, a.inv.ID)); derr != nil {
			return derr
		}
		return &ConflictError{Field: "email", Message: "is already a member of the organization", Err: err}
	}
	if err != nil {
		return fmt.Errorf("add membership: %w", err)
	}
	return nil
}

func (a *acceptance) removeMembership(ctx context.Context) error {
	if a.mb == nil {
		return nil
	}
	return ignoreNotFound(a.m.members.DeleteMembership(ctx, a.mb.OrgID, a.mb.AdminID))
}

func (a *acceptance) useInvitation(ctx context.Context) error {
	if err := a.m.invitations.DeleteInvitation(ctx, a.inv.ID); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("use invitation: %w", err)
	}
	return nil
}

// settleAccept settles an accept whose process died: if its invitation is
// still there, the accept was not acknowledged and is undone (the
// membership and the account it made, recognized by their time stamps);
// otherwise it is complete. The caller holds the organization's lock.
func (m *Manager) settleAccept(ctx context.Context, op *Operation) error {
	_, err := m.invitations.Invitation(ctx, op.Invitation)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up invitation: %w", err)
	}
	mb, err := m.members.Membership(ctx, op.OrgID, op.AdminID)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return fmt.Errorf("look up membership: %w", err)
	case mb.JoinedAt.Equal(op.Started):
		if err := ignoreNotFound(m.members.DeleteMembership(ctx, op.OrgID, op.AdminID)); err != nil {
			return fmt.Errorf("undo membership: %w", err)
		}
	}
	account, err := m.admins.AdminByID(ctx, op.AdminID)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("look up account: %w", err)
	case !account.CreatedAt.Equal(op.Started):
		return nil // an account from before: not the accept's to undo
	}
	// The account the accept made: gone with it, unless it joined
	// another organization meanwhile (leave settles it then).
	return m.leave(ctx, op.OrgID, op.AdminID)
}
