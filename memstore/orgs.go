package memstore

import (
	"context"
	"fmt"
	"time"

	"github.com/tenancy/tenancy"
)

func copyOrg(o *tenancy.Org) *tenancy.Org { c := *o; return &c }

// ReserveName implements tenancy.Store.
func (s *Store) ReserveName(ctx context.Context, identifier string, org tenancy.OrgID, at time.Time) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if r, ok := s.names[identifier]; ok {
		if r.OrgID != org {
			return fmt.Errorf("name %q is held by organization %s: %w", identifier, r.OrgID, tenancy.ErrConflict)
		}
		return nil
	}
	s.names[identifier] = tenancy.Reservation{Identifier: identifier, OrgID: org, ReservedAt: at}
	return nil
}

// ReleaseName implements tenancy.Store.
func (s *Store) ReleaseName(ctx context.Context, identifier string, org tenancy.OrgID) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.names[identifier].OrgID == org {
		delete(s.names, identifier)
	}
	return nil
}

// Reservations implements tenancy.Store.
func (s *Store) Reservations(ctx context.Context, before time.Time) ([]tenancy.Reservation, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []tenancy.Reservation
	for _, r := range s.names {
		if r.ReservedAt.Before(before) {
			out = append(out, r)
		}
	}
	return out, nil
}

// CreateOrg implements tenancy.Store.
func (s *Store) CreateOrg(ctx context.Context, org *tenancy.Org) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.orgs[org.ID]; ok {
		return fmt.Errorf("organization %s exists: %w", org.ID, tenancy.ErrConflict)
	}
	for _, o := range s.orgs {
		if o.Identifier == org.Identifier {
			return fmt.Errorf("identifier %q is used by organization %s: %w", org.Identifier, o.ID, tenancy.ErrConflict)
		}
	}
	s.orgs[org.ID] = copyOrg(org)
	return nil
}

// OrgByID implements tenancy.Store.
func (s *Store) OrgByID(ctx context.Context, id tenancy.OrgID) (*tenancy.Org, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	o, ok := s.orgs[id]
	if !ok {
		return nil, fmt.Errorf("organization %s: %w", id, tenancy.ErrNotFound)
	}
	return copyOrg(o), nil
}

// OrgByIdentifier implements tenancy.Store.
func (s *Store) OrgByIdentifier(ctx context.Context, identifier string) (*tenancy.Org, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	for _, o := range s.orgs {
		if o.Identifier == identifier {
			return copyOrg(o), nil
		}
	}
	return nil, fmt.Errorf("organization %q: %w", identifier, tenancy.ErrNotFound)
}

// UpdateOrg implements tenancy.Store.
func (s *Store) UpdateOrg(ctx context.Context, org *tenancy.Org) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	cur, ok := s.orgs[org.ID]
	if !ok {
		return fmt.Errorf("organization %s: %w", org.ID, tenancy.ErrNotFound)
	}
	if cur.Version != org.Version {
		return fmt.Errorf("organization %s is at version %d, not %d: %w", org.ID, cur.Version, org.Version, tenancy.ErrConflict)
	}
	for _, o := range s.orgs {
		if o.ID != org.ID && o.Identifier == org.Identifier {
			return fmt.Errorf("identifier %q is used by organization %s: %w", org.Identifier, o.ID, tenancy.ErrConflict)
		}
	}
	org.Version++
	s.orgs[org.ID] = copyOrg(org)
	return nil
}

// DeleteOrg implements tenancy.Store.
func (s *Store) DeleteOrg(ctx context.Context, id tenancy.OrgID) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.orgs[id]; !ok {
		return fmt.Errorf("organization %s: %w", id, tenancy.ErrNotFound)
	}
	delete(s.orgs, id)
	return nil
}

// UnfinishedOrgs implements tenancy.Store.
func (s *Store) UnfinishedOrgs(ctx context.Context, before time.Time) ([]*tenancy.Org, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []*tenancy.Org
	for _, o := range s.orgs {
		if o.State != tenancy.OrgActive && o.ModifiedAt.Before(before) {
			out = append(out, copyOrg(o))
		}
	}
	return out, nil
}
