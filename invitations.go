package tenancy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultInvitationLifetime is how long an invitation can be accepted.
const DefaultInvitationLifetime = 7 * 24 * time.Hour

// InvitationNotifier is called with each new invitation and its token,
// for the application to send it (an email with a link, say). It runs
// before Invite returns; an error undoes the invitation and is returned.
type InvitationNotifier func(ctx context.Context, inv Invitation, token string) error

// WithInvitationNotifier sets the function told of every new invitation
// and its token (see InvitationNotifier). Without it the token is only
// returned by Invite.
func WithInvitationNotifier(f InvitationNotifier) Option {
	return func(c *config) error {
		if f == nil {
			return errors.New("tenancy: invitation notifier must not be nil")
		}
		c.notify = f
		return nil
	}
}

// WithInvitationLifetime sets how long an invitation can be accepted
// (default DefaultInvitationLifetime; 1 minute to 90 days).
func WithInvitationLifetime(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Minute || d > 90*24*time.Hour {
			return fmt.Errorf("tenancy: invitation lifetime %v must be between 1m and 90 days", d)
		}
		c.inviteLifetime = d
		return nil
	}
}

// errNoInvitation is the one answer to an invitation token that is
// malformed, unknown, wrong, used, revoked or expired.
var errNoInvitation = fmt.Errorf("invitation token unknown, used, revoked or expired: %w", ErrNotFound)

// newInvitationToken returns a token for invitation id: the id, a dot and
// 256 random bits, and the SHA-256 of the random part, which is all that
// is stored.
func newInvitationToken(id string) (token string, hash []byte) {
	var secret [32]byte
	_, _ = rand.Read(secret[:]) // crypto/rand.Read never fails
	s := base64.RawURLEncoding.EncodeToString(secret[:])
	sum := sha256.Sum256([]byte(s))
	return id + "." + s, sum[:]
}

// splitInvitationToken returns the invitation id of token and the hash of
// its secret, or false for a token of the wrong shape.
func splitInvitationToken(token string) (string, []byte, bool) {
	id, secret, ok := strings.Cut(token, ".")
	if !ok || len(id) != 24 || len(secret) != 43 || len(token) > 128 {
		return "", nil, false
	}
	sum := sha256.Sum256([]byte(secret))
	return id, sum[:], true
}

// InviteParams are the inputs of Invite.
type InviteParams struct {
	// Email is the invitee's address, stored lower-cased.
	Email string
	// Role is the role the invitee joins with; "" means RoleMember.
	Role Role
}

// Invite invites an email address to join the organization of claims with
// a role, and returns the invitation and its token, which is given out
// only here (and to the InvitationNotifier) and stored as a hash. Owners
// may invite with any role, admins with the roles admin and member,
// members not at all (ErrForbidden). It returns a *ValidationError for a
// bad email or role, and a *ConflictError if the address is already a
// member or already has a pending invitation (an expired one is
// replaced).
func (m *Manager) Invite(ctx context.Context, claims *Claims, p InviteParams) (_ *Invitation, token string, err error) {
	ctx, done := m.begin(ctx, "invite")
	defer done(&err)
	var verr ValidationError
	email, msg := normalizeEmail(p.Email)
	verr.add("email", msg)
	role := p.Role
	if role == "" {
		role = RoleMember
	} else if !role.Valid() {
		verr.add("role", `must be "owner", "admin" or "member"`)
	}
	if err := verr.err(); err != nil {
		return nil, "", err
	}
	if !claims.Can(PermInvite) {
		return nil, "", forbidden("role %q may not invite", claims.Role)
	}
	// Under the lock, so that an invitation is not written after its
	// organization's deletion removed the others.
	ctx, unlock, err := m.lockWait(ctx, claims.OrgID)
	if err != nil {
		return nil, "", err
	}
	defer unlock()
	defer func() { err = m.leaseError(ctx, err) }()
	org, me, err := m.actor(ctx, claims)
	if err != nil {
		return nil, "", err
	}
	switch {
	case !me.Role.Can(PermInvite):
		return nil, "", forbidden("role %q may not invite", me.Role)
	case role == RoleOwner && me.Role != RoleOwner:
		return nil, "", forbidden("only an owner may invite an owner")
	}
	if err := m.notMember(ctx, org, email); err != nil {
		return nil, "", err
	}
	now := m.stamp()
	inv := &Invitation{
		ID: newObjectID(now), OrgID: org.ID, Email: email, Role: role,
		InvitedBy: claims.AdminID, CreatedAt: now, ExpiresAt: now.Add(m.inviteLifetime),
	}
	token, inv.TokenHash = newInvitationToken(inv.ID)
	ev := m.newEvent(EventMemberInvited, org.ID, claims.AdminID, map[string]any{
		"invitation_id": inv.ID, "email": email, "role": string(role), "expires_at": inv.ExpiresAt.Format(timeFormat),
	})
	if err := m.journal.PutOperation(ctx, &Operation{OrgID: org.ID, Kind: OpInvite, Invitation: inv.ID, Started: now, Event: ev}); err != nil {
		return nil, "", fmt.Errorf("record invitation in the journal: %w", err)
	}
	if err := m.createInvitation(ctx, inv); err != nil {
		if errors.Is(err, ErrConflict) {
			m.endOperation(ctx, org.ID) // nothing written
		}
		return nil, "", err
	}
	if m.notify != nil {
		if err := m.notify(ctx, *inv, token); err != nil {
			if derr := m.invitations.DeleteInvitation(context.WithoutCancel(ctx), inv.ID); derr != nil {
				m.log.ErrorContext(ctx, "undo invitation after the notifier failed", "invitation", inv.ID, "err", derr)
			} else {
				m.endOperation(ctx, org.ID)
			}
			return nil, "", fmt.Errorf("invitation notifier: %w", err)
		}
	}
	m.finishOperation(ctx, org.ID, ev)
	m.log.InfoContext(ctx, "member invited", "org_id", org.ID, "invitation", inv.ID, "role", role, "by", claims.AdminID)
	return inv, token, nil
}

// notMember returns a *ConflictError if the account of email is a member
// of org.
func (m *Manager) notMember(ctx context.Context, org *Org, email string) error {
	account, err := m.admins.AdminByEmail(ctx, email)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up account: %w", err)
	}
	_, err = m.membership(ctx, org, account.ID)
	switch {
	case err == nil:
		return &ConflictError{Field: "email", Message: "is already a member of the organization", Err: ErrConflict}
	case errors.Is(err, ErrNotFound):
		return nil
	}
	return fmt.Errorf("look up membership: %w", err)
}

// createInvitation stores inv, replacing an expired invitation of the
// same address.
func (m *Manager) createInvitation(ctx context.Context, inv *Invitation) error {
	err := m.invitations.CreateInvitation(ctx, inv)
	if !errors.Is(err, ErrConflict) {
		if err != nil {
			return fmt.Errorf("store invitation: %w", err)
		}
		return nil
	}
	pending, lerr := m.invitations.OrgInvitations(ctx, inv.OrgID)
	if lerr != nil {
		return fmt.Errorf("list invitations: %w", lerr)
	}
	for _, old := range pending {
		if old.Email != inv.Email {
			continue
		}
		if !old.ExpiresAt.After(m.now()) {
			if err := ignoreNotFound(m.invitations.DeleteInvitation(ctx, old.ID)); err != nil {
				return fmt.Errorf("remove expired invitation: %w", err)
			}
			if err := m.invitations.CreateInvitation(ctx, inv); err != nil {
				return fmt.Errorf("store invitation: %w", err)
			}
			return nil
		}
	}
	return &ConflictError{Field: "email", Message: "already has a pending invitation to the organization", Err: err}
}

// Invitations returns the pending invitations of the organization of
// claims, oldest first; expired ones are left out. Owners and admins may
// list them (ErrForbidden otherwise).
func (m *Manager) Invitations(ctx context.Context, claims *Claims) ([]*Invitation, error) {
	if !claims.Can(PermInvite) {
		return nil, forbidden("role %q may not list invitations", claims.Role)
	}
	all, err := m.invitations.OrgInvitations(ctx, claims.OrgID)
	if err != nil {
		return nil, fmt.Errorf("list invitations: %w", err)
	}
	now := m.now()
	out := make([]*Invitation, 0, len(all))
	for _, inv := range all {
		if inv.ExpiresAt.After(now) {
			inv.TokenHash = nil
			out = append(out, inv)
		}
	}
	return out, nil
}

// RevokeInvitation deletes the pending invitation id of the organization
// of claims. Owners may revoke any; admins those with the roles admin and
// member (ErrForbidden otherwise). It returns ErrNotFound if the
// organization has no such invitation.
func (m *Manager) RevokeInvitation(ctx context.Context, claims *Claims, id string) (err error) {
	ctx, done := m.begin(ctx, "revoke_invitation")
	defer done(&err)
	if !claims.Can(PermInvite) {
		return forbidden("role %q may not revoke invitations", claims.Role)
	}
	ctx, unlock, err := m.lockWait(ctx, claims.OrgID)
	if err != nil {
		return err
	}
	defer unlock()
	defer func() { err = m.leaseError(ctx, err) }()
	_, me, err := m.actor(ctx, claims)
	if err != nil {
		return err
	}
	inv, err := m.invitations.Invitation(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound) || err == nil && inv.OrgID != claims.OrgID:
		return fmt.Errorf("invitation %q: %w", id, ErrNotFound)
	case err != nil:
		return fmt.Errorf("look up invitation: %w", err)
	}
	switch {
	case !me.Role.Can(PermInvite):
		return forbidden("role %q may not revoke invitations", me.Role)
	case inv.Role == RoleOwner && me.Role != RoleOwner:
		return forbidden("only an owner may revoke an invitation of an owner")
	}
	ev := m.newEvent(EventInvitationRevoked, claims.OrgID, claims.AdminID, map[string]any{
		"invitation_id": id, "email": inv.Email, "role": string(inv.Role),
	})
	if err := m.journal.PutOperation(ctx, &Operation{OrgID: claims.OrgID, Kind: OpRevoke, Invitation: id, Started: m.stamp(), Event: ev}); err != nil {
		return fmt.Errorf("record revocation in the journal: %w", err)
	}
	if err := m.invitations.DeleteInvitation(ctx, id); err != nil {
		return fmt.Errorf("revoke invitation %q: %w", id, err)
	}
	m.finishOperation(ctx, claims.OrgID, ev)
	m.log.InfoContext(ctx, "invitation revoked", "org_id", claims.OrgID, "invitation", id, "by", claims.AdminID)
	return nil
}

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
