package memstore

import (
	"context"
	"time"
)

// DeleteExpired implements tenancy.Store.
func (s *Store) DeleteExpired(ctx context.Context, now, failuresBefore time.Time) (int64, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	var n int64
	for jti, exp := range s.revoked {
		if exp.Before(now) {
			delete(s.revoked, jti)
			n++
		}
	}
	for email, a := range s.attempts {
		if a.last.Before(failuresBefore) {
			delete(s.attempts, email)
			n++
		}
	}
	return n, nil
}

// RecordLoginFailure implements tenancy.Store.
func (s *Store) RecordLoginFailure(ctx context.Context, email string, known bool, at time.Time) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if a := s.adminByEmail(email); known && a != nil {
		a.FailedLogins++
		a.LastFailedLogin = at
		return nil
	}
	t := s.attempts[email]
	s.attempts[email] = attempt{n: t.n + 1, last: at}
	return nil
}

// ClaimLoginAttempt implements tenancy.Store.
func (s *Store) ClaimLoginAttempt(ctx context.Context, email string, known bool, last, at time.Time) (bool, error) {
	if err := s.lock(ctx); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	if known {
		a := s.adminByEmail(email)
		if a == nil || !a.LastFailedLogin.Equal(last) {
			return false, nil
		}
		a.FailedLogins++
		a.LastFailedLogin = at
		return true, nil
	}
	t, ok := s.attempts[email]
	if !ok && !last.IsZero() || ok && !t.last.Equal(last) {
		return false, nil
	}
	s.attempts[email] = attempt{n: t.n + 1, last: at}
	return true, nil
}

// ResetLoginFailures implements tenancy.Store.
func (s *Store) ResetLoginFailures(ctx context.Context, email string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if a := s.adminByEmail(email); a != nil {
		a.FailedLogins, a.LastFailedLogin = 0, time.Time{}
	}
	delete(s.attempts, email)
	return nil
}

// LoginFailures implements tenancy.Store.
func (s *Store) LoginFailures(ctx context.Context, email string) (int, time.Time, error) {
	if err := s.lock(ctx); err != nil {
		return 0, time.Time{}, err
	}
	defer s.mu.Unlock()
	t := s.attempts[email]
	return t.n, t.last, nil
}

// RevokeToken implements tenancy.Store.
func (s *Store) RevokeToken(ctx context.Context, jti string, expires time.Time) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.revoked[jti] = expires
	return nil
}

// TokenRevoked implements tenancy.Store.
func (s *Store) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	if err := s.lock(ctx); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	_, ok := s.revoked[jti]
	return ok, nil
}
