package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/tenancy/tenancy"
)

type memberKey struct {
	org   tenancy.OrgID
	admin tenancy.AdminID
}

// AddMembership implements tenancy.Store.
func (s *Store) AddMembership(ctx context.Context, mb *tenancy.Membership) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	k := memberKey{mb.OrgID, mb.AdminID}
	if _, ok := s.members[k]; ok {
		return fmt.Errorf("admin %s is a member of %s: %w", mb.AdminID, mb.OrgID, tenancy.ErrConflict)
	}
	c := *mb
	c.Email = strings.ToLower(c.Email)
	s.members[k] = &c
	return nil
}

// Membership implements tenancy.Store.
func (s *Store) Membership(ctx context.Context, org tenancy.OrgID, admin tenancy.AdminID) (*tenancy.Membership, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	mb, ok := s.members[memberKey{org, admin}]
	if !ok {
		return nil, fmt.Errorf("membership of %s in %s: %w", admin, org, tenancy.ErrNotFound)
	}
	c := *mb
	return &c, nil
}

// SetMemberRole implements tenancy.Store.
func (s *Store) SetMemberRole(ctx context.Context, org tenancy.OrgID, admin tenancy.AdminID, role tenancy.Role) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	mb, ok := s.members[memberKey{org, admin}]
	if !ok {
		return fmt.Errorf("membership of %s in %s: %w", admin, org, tenancy.ErrNotFound)
	}
	mb.Role = role
	return nil
}

// DeleteMembership implements tenancy.Store.
func (s *Store) DeleteMembership(ctx context.Context, org tenancy.OrgID, admin tenancy.AdminID) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	k := memberKey{org, admin}
	if _, ok := s.members[k]; !ok {
		return fmt.Errorf("membership of %s in %s: %w", admin, org, tenancy.ErrNotFound)
	}
	delete(s.members, k)
	return nil
}

// OrgMembers implements tenancy.Store.
func (s *Store) OrgMembers(ctx context.Context, org tenancy.OrgID, after tenancy.AdminID, limit int) ([]*tenancy.Membership, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []*tenancy.Membership
	for k, mb := range s.members {
		if k.org == org && k.admin > after {
			c := *mb
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, func(a, b *tenancy.Membership) int { return strings.Compare(string(a.AdminID), string(b.AdminID)) })
	if len(out) > limit {
		out = out[:max(limit, 0)]
	}
	return out, nil
}

// AdminMemberships implements tenancy.Store.
func (s *Store) AdminMemberships(ctx context.Context, admin tenancy.AdminID) ([]*tenancy.Membership, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []*tenancy.Membership
	for k, mb := range s.members {
		if k.admin == admin {
			c := *mb
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, byJoined)
	return out, nil
}

func byJoined(a, b *tenancy.Membership) int {
	return cmp.Or(a.JoinedAt.Compare(b.JoinedAt), strings.Compare(string(a.OrgID), string(b.OrgID)))
}
