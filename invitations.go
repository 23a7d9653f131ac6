package tenancy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
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
