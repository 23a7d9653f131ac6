package tenancy

import (
	"context"
	"errors"
	"fmt"
)

// MembershipInfo is one organization an account belongs to, as Me lists it.
type MembershipInfo struct {
	OrgID            OrgID
	OrganizationName string
	Role             Role
}

// Account is what Me returns: the caller, the organization and role of
// its token, and every organization it belongs to.
type Account struct {
	AdminID       AdminID
	Email         string
	OrgID         OrgID
	Role          Role
	Organizations []MembershipInfo
}

// Me returns the account of claims with every organization it belongs to,
// oldest membership first. It costs a read of the account's memberships
// (on FerretDB, of all of them) and one read per organization.
func (m *Manager) Me(ctx context.Context, claims *Claims) (*Account, error) {
	admin, err := m.admins.AdminByID(ctx, claims.AdminID)
	if err != nil {
		return nil, fmt.Errorf("look up account: %w", err)
	}
	all, err := m.members.AdminMemberships(ctx, admin.ID)
	if err != nil {
		return nil, fmt.Errorf("list memberships: %w", err)
	}
	acc := &Account{AdminID: admin.ID, Email: admin.Email, OrgID: claims.OrgID, Role: claims.Role, Organizations: []MembershipInfo{}}
	seen := false
	for _, mb := range all {
		org, err := m.reads.OrgByID(ctx, mb.OrgID)
		if errors.Is(err, ErrNotFound) || err == nil && !org.visible() {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("look up organization %s: %w", mb.OrgID, err)
		}
		seen = seen || org.ID == claims.OrgID
		acc.Organizations = append(acc.Organizations, MembershipInfo{OrgID: org.ID, OrganizationName: org.Name, Role: mb.Role})
	}
	if !seen {
		// The primary owner of an organization from before memberships.
		if org, err := m.reads.OrgByID(ctx, claims.OrgID); err == nil && org.visible() && org.AdminID == admin.ID {
			acc.Organizations = append(acc.Organizations, MembershipInfo{OrgID: org.ID, OrganizationName: org.Name, Role: RoleOwner})
		}
	}
	return acc, nil
}

// SwitchOrg issues the caller of claims a token for the organization
// named name, in which it must be a member (ErrForbidden otherwise; it
// returns ErrNotFound if there is no such organization). The caller's
// other tokens stay valid: a client may hold one per organization.
func (m *Manager) SwitchOrg(ctx context.Context, claims *Claims, name string) (*Token, error) {
	org, err := m.OrgByName(ctx, name)
	if err != nil {
		return nil, err
	}
	mb, err := m.membership(ctx, org, claims.AdminID)
	if errors.Is(err, ErrNotFound) {
		return nil, forbidden("not a member of %q", org.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("look up membership: %w", err)
	}
	admin, err := m.admins.AdminByID(ctx, claims.AdminID)
	if err != nil {
		return nil, fmt.Errorf("look up account: %w", err)
	}
	return m.issueLogin(ctx, admin, mb, "switch")
}
