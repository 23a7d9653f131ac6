package memstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tenancy/tenancy"
)

// LockOrg implements tenancy.Store.
func (s *Store) LockOrg(ctx context.Context, org tenancy.OrgID, owner string, expires, now time.Time) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if l, ok := s.locks[org]; ok && !l.expires.Before(now) {
		return fmt.Errorf("organization %s is locked by %s until %v: %w", org, l.owner, l.expires, tenancy.ErrConflict)
	}
	s.locks[org] = lock{owner: owner, expires: expires}
	return nil
}

// UnlockOrg implements tenancy.Store.
func (s *Store) UnlockOrg(ctx context.Context, org tenancy.OrgID, owner string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.locks[org].owner == owner {
		delete(s.locks, org)
	}
	return nil
}

// RenewLock implements tenancy.Store.
func (s *Store) RenewLock(ctx context.Context, org tenancy.OrgID, owner string, expires time.Time) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	l, ok := s.locks[org]
	if !ok || l.owner != owner {
		return fmt.Errorf("organization %s is not locked by %s: %w", org, owner, tenancy.ErrConflict)
	}
	s.locks[org] = lock{owner: owner, expires: expires}
	return nil
}

// PutOperation implements tenancy.Store.
func (s *Store) PutOperation(ctx context.Context, op *tenancy.Operation) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	c := *op
	c.Names = slices.Clone(op.Names)
	c.Event = copyEvent(op.Event)
	s.journal[op.OrgID] = &c
	return nil
}

// DeleteOperation implements tenancy.Store.
func (s *Store) DeleteOperation(ctx context.Context, org tenancy.OrgID) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	delete(s.journal, org)
	return nil
}

// Operations implements tenancy.Store.
func (s *Store) Operations(ctx context.Context) ([]*tenancy.Operation, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := make([]*tenancy.Operation, 0, len(s.journal))
	for _, op := range s.journal {
		c := *op
		c.Names = slices.Clone(op.Names)
		c.Event = copyEvent(op.Event)
		out = append(out, &c)
	}
	slices.SortFunc(out, func(a, b *tenancy.Operation) int { return strings.Compare(string(a.OrgID), string(b.OrgID)) })
	return out, nil
}
