package tenancy

import (
	"slices"
)

// Permission is an action on an organization that a role may or may not
// take; Claims.Can answers for the role of a token.
type Permission string

// Permissions, with the roles that have them. Some are refined by the
// Manager where the target matters: an admin invites and changes the
// roles of admins and members only, a member removes only itself, and
// only the primary owner transfers primary ownership.
const (
	// PermRenameOrg: owner, admin.
	PermRenameOrg Permission = "org.rename"
	// PermDeleteOrg: owner.
	PermDeleteOrg Permission = "org.delete"
	// PermInvite covers inviting, listing and revoking invitations:
	// owner, admin.
	PermInvite Permission = "invitations.manage"
	// PermListMembers: every role.
	PermListMembers Permission = "members.list"
	// PermChangeRoles: owner, admin.
	PermChangeRoles Permission = "members.change_role"
	// PermRemoveMembers is removing others: owner, admin. Every member
	// may remove itself.
	PermRemoveMembers Permission = "members.remove"
	// PermTransferOwnership: owner (and of the owners, the primary one).
	PermTransferOwnership Permission = "org.transfer"
	// PermTenantDocuments: every role.
	PermTenantDocuments Permission = "tenant.documents"
	// PermReadEvents is reading the organization's events (the audit
	// log): owner, admin.
	PermReadEvents Permission = "events.read"
)

// permissions is the permission table: the roles that hold each.
var permissions = map[Permission][]Role{
	PermRenameOrg:         {RoleOwner, RoleAdmin},
	PermDeleteOrg:         {RoleOwner},
	PermInvite:            {RoleOwner, RoleAdmin},
	PermListMembers:       {RoleOwner, RoleAdmin, RoleMember},
	PermChangeRoles:       {RoleOwner, RoleAdmin},
	PermRemoveMembers:     {RoleOwner, RoleAdmin},
	PermTransferOwnership: {RoleOwner},
	PermTenantDocuments:   {RoleOwner, RoleAdmin, RoleMember},
	PermReadEvents:        {RoleOwner, RoleAdmin},
}

// Can reports whether role r has permission p. An unknown role or
// permission has none.
func (r Role) Can(p Permission) bool { return slices.Contains(permissions[p], r) }

// Can reports whether the role of the token has permission p. The role is
// the one the member holds now when the claims come from
// AuthenticateToken (which reads it), and the one written in the token
// when they come from VerifyToken alone.
func (c *Claims) Can(p Permission) bool { return c != nil && c.Role.Can(p) }

// ParseRole returns the role named s, or a *ValidationError for field.
func ParseRole(field, s string) (Role, error) {
	if r := Role(s); r.Valid() {
		return r, nil
	}
	return "", &ValidationError{Fields: []FieldError{{Field: field, Message: `must be "owner", "admin" or "member"`}}}
}
