package memstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tenancy/tenancy"
)

func copyInvitation(inv *tenancy.Invitation) *tenancy.Invitation {
	c := *inv
	c.TokenHash = slices.Clone(inv.TokenHash)
	return &c
}

// CreateInvitation implements tenancy.Store.
func (s *Store) CreateInvitation(ctx context.Context, inv *tenancy.Invitation) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.invitations[inv.ID]; ok {
		return fmt.Errorf("invitation %s exists: %w", inv.ID, tenancy.ErrConflict)
	}
	c := copyInvitation(inv)
	c.Email = strings.ToLower(c.Email)
	for _, other := range s.invitations {
		if other.OrgID == c.OrgID && other.Email == c.Email {
			return fmt.Errorf("%s is already invited to %s: %w", c.Email, c.OrgID, tenancy.ErrConflict)
		}
	}
	s.invitations[inv.ID] = c
	return nil
}

// Invitation implements tenancy.Store.
func (s *Store) Invitation(ctx context.Context, id string) (*tenancy.Invitation, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	inv, ok := s.invitations[id]
	if !ok {
		return nil, fmt.Errorf("invitation %s: %w", id, tenancy.ErrNotFound)
	}
	return copyInvitation(inv), nil
}

// OrgInvitations implements tenancy.Store.
func (s *Store) OrgInvitations(ctx context.Context, org tenancy.OrgID) ([]*tenancy.Invitation, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []*tenancy.Invitation
	for _, inv := range s.invitations {
		if inv.OrgID == org {
			out = append(out, copyInvitation(inv))
		}
	}
	slices.SortFunc(out, func(a, b *tenancy.Invitation) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// DeleteInvitation implements tenancy.Store.
func (s *Store) DeleteInvitation(ctx context.Context, id string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.invitations[id]; !ok {
		return fmt.Errorf("invitation %s: %w", id, tenancy.ErrNotFound)
	}
	delete(s.invitations, id)
	return nil
}

// DeleteExpiredInvitations implements tenancy.Store.
func (s *Store) DeleteExpiredInvitations(ctx context.Context, before time.Time) (int64, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	var n int64
	for id, inv := range s.invitations {
		if inv.ExpiresAt.Before(before) {
			delete(s.invitations, id)
			n++
		}
	}
	return n, nil
}
