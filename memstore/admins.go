package memstore

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/tenancy/tenancy"
)

func copyAdmin(a *tenancy.Admin) *tenancy.Admin {
	c := *a
	c.PasswordHash = slices.Clone(a.PasswordHash)
	return &c
}

// CreateAdmin implements tenancy.Store.
func (s *Store) CreateAdmin(ctx context.Context, admin *tenancy.Admin) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.admins[admin.ID]; ok {
		return fmt.Errorf("admin %s exists: %w", admin.ID, tenancy.ErrConflict)
	}
	c := copyAdmin(admin)
	c.Email = strings.ToLower(c.Email)
	for _, a := range s.admins {
		if a.Email == c.Email {
			return fmt.Errorf("email %s is used by admin %s: %w", c.Email, a.ID, tenancy.ErrConflict)
		}
	}
	s.admins[admin.ID] = c
	return nil
}

// AdminByEmail implements tenancy.Store.
func (s *Store) AdminByEmail(ctx context.Context, email string) (*tenancy.Admin, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	email = strings.ToLower(email)
	for _, a := range s.admins {
		if a.Email == email {
			return copyAdmin(a), nil
		}
	}
	return nil, fmt.Errorf("admin %s: %w", email, tenancy.ErrNotFound)
}

// AdminByID implements tenancy.Store.
func (s *Store) AdminByID(ctx context.Context, id tenancy.AdminID) (*tenancy.Admin, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	a, ok := s.admins[id]
	if !ok {
		return nil, fmt.Errorf("admin %s: %w", id, tenancy.ErrNotFound)
	}
	return copyAdmin(a), nil
}

// DeleteAdmin implements tenancy.Store.
func (s *Store) DeleteAdmin(ctx context.Context, id tenancy.AdminID) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.admins[id]; !ok {
		return fmt.Errorf("admin %s: %w", id, tenancy.ErrNotFound)
	}
	delete(s.admins, id)
	return nil
}

// adminByEmail returns the stored admin with email, or nil. The caller
// holds the mutex.
func (s *Store) adminByEmail(email string) *tenancy.Admin {
	for _, a := range s.admins {
		if a.Email == email {
			return a
		}
	}
	return nil
}

// SetAdminHome implements tenancy.Store.
func (s *Store) SetAdminHome(ctx context.Context, id tenancy.AdminID, org tenancy.OrgID) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	a, ok := s.admins[id]
	if !ok {
		return fmt.Errorf("admin %s: %w", id, tenancy.ErrNotFound)
	}
	a.OrgID = org
	return nil
}

// SetAdminPassword implements tenancy.Store.
func (s *Store) SetAdminPassword(ctx context.Context, id tenancy.AdminID, hash []byte) (int64, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	a, ok := s.admins[id]
	if !ok {
		return 0, fmt.Errorf("admin %s: %w", id, tenancy.ErrNotFound)
	}
	a.PasswordHash = slices.Clone(hash)
	a.TokenGeneration++
	return a.TokenGeneration, nil
}
