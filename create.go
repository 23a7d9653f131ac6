package tenancy

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// CreateOrgParams are the inputs of CreateOrg.
type CreateOrgParams struct {
	// Name is the organization name; see Identifier for the rules.
	Name string
	// AdminEmail is the admin's email, stored lower-cased.
	AdminEmail string
	// AdminPassword is the admin's password, 8 to 72 bytes.
	AdminPassword string
}

// CreateOrg creates an organization, its admin and its tenant collection.
// It returns a *ValidationError (ErrInvalid) for bad input and ErrConflict
// if the name's identifier or the email is taken. On any failure the steps
// already taken are undone.
func (m *Manager) CreateOrg(ctx context.Context, p CreateOrgParams) (_ *Org, err error) {
	ctx, done := m.begin(ctx, "create")
	defer done(&err)
	var verr ValidationError
	name, id, msg := identifier(p.Name)
	verr.add("organization_name", msg)
	email, msg := normalizeEmail(p.AdminEmail)
	verr.add("email", msg)
	verr.add("password", checkPassword(p.AdminPassword))
	if err := verr.err(); err != nil {
		return nil, err
	}
	// A name an active organization holds is public (GET /org/get): its
	// conflict needs no bcrypt work, which a burst of sign-ups would
	// otherwise queue for. The reservation below decides every other case.
	held, err := m.orgs.OrgByIdentifier(ctx, id)
	switch {
	case err == nil && held.State == OrgActive:
		return nil, nameTaken(name, ErrConflict)
	case err != nil && !errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("look up organization %q: %w", name, err)
	}
	if err := m.earlierNameTaken(ctx, p.Name, id, ""); err != nil {
		return nil, err
	}
	hash, err := m.hashPassword(ctx, p.AdminPassword)
	if err != nil {
		return nil, err
	}

	c := m.newCreation(name, id, email, hash)
	// The new org's lock keeps recovery off it while it is being created.
	ctx, unlock, err := m.lockOrg(ctx, c.org.ID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	defer func() { err = m.leaseError(ctx, err) }()
	var undo undoList
	if err := m.runSteps(ctx, "create", c.org.ID, &undo, c.steps()...); err != nil {
		return nil, err
	}
	m.finishOperation(ctx, c.org.ID, c.event)
	m.log.InfoContext(ctx, "organization created", "org_id", c.org.ID, "identifier", id)
	return c.org, nil
}

// creation is one CreateOrg past its checks: the records it writes, and
// the steps that write them.
type creation struct {
	m     *Manager
	org   *Org
	admin *Admin
	now   time.Time
	// ownCollection is false once the tenant collection was found to be
	// another's, which undo must then leave alone.
	ownCollection bool
	event         *Event
}

func (m *Manager) newCreation(name, id, email string, hash []byte) *creation {
	now := m.stamp() // as stores keep it, so that joins compare in order
	org := &Org{
		ID:               OrgID(newObjectID(now)),
		Name:             name,
		Identifier:       id,
		TenantCollection: TenantCollection(id),
		AdminID:          AdminID(newObjectID(now)),
		AdminEmail:       email,
		State:            OrgCreating,
		CreatedAt:        now,
		ModifiedAt:       now,
	}
	admin := &Admin{ID: org.AdminID, Email: email, PasswordHash: hash, OrgID: org.ID, CreatedAt: now}
	ev := m.newEvent(EventOrgCreated, org.ID, admin.ID, map[string]any{
		"organization_name": name, "organization_identifier": id, "tenant_collection": org.TenantCollection,
		"admin_id": string(admin.ID), "admin_email": email,
	})
	return &creation{m: m, org: org, admin: admin, now: now, ownCollection: true, event: ev}
}

// steps are a create's steps: the journal entry, the name, the record
// (State creating), the tenant collection, the admin, its membership as
// owner, and the record's activation, which acknowledges the create.
func (c *creation) steps() []step {
	return []step{
		{c.begin, c.endOperation},
		{c.reserveName, c.releaseName},
		{c.createRecord, c.deleteRecord},
		{c.createCollection, c.dropCollection},
		{c.createAdmin, c.deleteAdmin},
		{c.addOwner, c.removeOwner},
		{c.activate, nil},
	}
}

func (c *creation) begin(ctx context.Context) error {
	return c.m.beginOperation(ctx, c.org.ID, OpCreate, c.event, c.org.Identifier)
}

func (c *creation) endOperation(ctx context.Context) error {
	return c.m.journal.DeleteOperation(ctx, c.org.ID)
}

func (c *creation) reserveName(ctx context.Context) error {
	err := c.m.orgs.ReserveName(ctx, c.org.Identifier, c.org.ID, c.now)
	if errors.Is(err, ErrConflict) {
		return nameTaken(c.org.Name, err)
	} else if err != nil {
		return fmt.Errorf("reserve name: %w", err)
	}
	return nil
}

func (c *creation) releaseName(ctx context.Context) error {
	return c.m.orgs.ReleaseName(ctx, c.org.Identifier, c.org.ID)
}

func (c *creation) createRecord(ctx context.Context) error {
	if err := c.m.orgs.CreateOrg(ctx, c.org); err != nil {
		return fmt.Errorf("create org record: %w", err)
	}
	return nil
}

func (c *creation) deleteRecord(ctx context.Context) error {
	return ignoreNotFound(c.m.orgs.DeleteOrg(ctx, c.org.ID))
}

func (c *creation) createCollection(ctx context.Context) error {
	err := c.m.collections.CreateTenantCollection(ctx, c.org.TenantCollection, c.org.ID, c.now)
	if errors.Is(err, ErrConflict) {
		// Not ours: a collection of that name was there before.
		c.ownCollection = false
		c.m.log.ErrorContext(ctx, "tenant collection exists without an organization holding its name",
			"collection", c.org.TenantCollection, "identifier", c.org.Identifier)
		return collectionTaken(c.org.TenantCollection, err)
	} else if err != nil {
		return fmt.Errorf("create tenant collection: %w", err)
	}
	return nil
}

func (c *creation) dropCollection(ctx context.Context) error {
	if !c.ownCollection {
		return nil
	}
	return c.m.collections.DropTenantCollection(ctx, c.org.TenantCollection)
}

func (c *creation) createAdmin(ctx context.Context) error {
	err := c.m.admins.CreateAdmin(ctx, c.admin)
	if errors.Is(err, ErrConflict) {
		return &ConflictError{Field: "email", Message: "is already registered to an organization", Err: err}
	} else if err != nil {
		return fmt.Errorf("create admin: %w", err)
	}
	return nil
}

func (c *creation) deleteAdmin(ctx context.Context) error {
	return ignoreNotFound(c.m.admins.DeleteAdmin(ctx, c.admin.ID))
}

func (c *creation) addOwner(ctx context.Context) error {
	err := c.m.members.AddMembership(ctx, &Membership{OrgID: c.org.ID, AdminID: c.admin.ID, Email: c.admin.Email, Role: RoleOwner, JoinedAt: c.now})
	if err != nil {
		return fmt.Errorf("add owner: %w", err)
	}
	return nil
}

func (c *creation) removeOwner(ctx context.Context) error {
	return ignoreNotFound(c.m.members.DeleteMembership(ctx, c.org.ID, c.admin.ID))
}

func (c *creation) activate(ctx context.Context) error {
	c.org.State = OrgActive
	if err := c.m.orgs.UpdateOrg(ctx, c.org); err != nil {
		return fmt.Errorf("activate org: %w", err)
	}
	return nil
}
