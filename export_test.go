package tenancy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// CountHashCompares makes every bcrypt comparison count until the returned
// function is called; that function restores bcrypt and returns the count.
// Tests using it must not run in parallel with other logins.
func CountHashCompares() (stop func() int64) {
	var n atomic.Int64
	orig := compareHash
	compareHash = func(hash, password []byte) error {
		n.Add(1)
		return orig(hash, password)
	}
	return func() int64 {
		compareHash = orig
		return n.Load()
	}
}

// OvertakenRuns returns how many runs of tenant calls a rename or delete
// has overtaken in this process so far.
func OvertakenRuns() int64 { return overtaken.Load() }

// CountPasswordHashes makes every bcrypt hash of a new password count
// until the returned function is called, which restores bcrypt and
// returns the count. Tests using it must not run in parallel with others
// that hash.
func CountPasswordHashes() (stop func() int64) {
	var n atomic.Int64
	orig := generateHash
	generateHash = func(password []byte, cost int) ([]byte, error) {
		n.Add(1)
		return orig(password, cost)
	}
	return func() int64 {
		generateHash = orig
		return n.Load()
	}
}

// SlowPasswordHashes makes every hash of a new password take d (at
// bcrypt's least cost, plus a sleep), so that tests of queueing do not
// depend on the machine's speed; the returned function restores bcrypt.
func SlowPasswordHashes(d time.Duration) (restore func()) {
	orig := generateHash
	generateHash = func(password []byte, _ int) ([]byte, error) {
		time.Sleep(d)
		return orig(password, bcrypt.MinCost)
	}
	return func() { generateHash = orig }
}

// DummyHash returns the hash m compares a login for an unknown email with.
func DummyHash(m *Manager) []byte { return m.dummyHash }

// EarlierIdentifier is earlierIdentifier, for the fuzz target.
func EarlierIdentifier(name, id string) string { return earlierIdentifier(name, id) }

// DefaultIgnorable and LatinLookAlike are the tables of the identifier
// rules.
var (
	DefaultIgnorable = defaultIgnorable
	LatinLookAlike   = latinLookAlike
)

// CacheLen returns how many entries m's cache holds (WithCache).
func CacheLen(m *Manager) (int, error) {
	if m.cache == nil {
		return 0, errors.New("tenancy: no cache")
	}
	c := m.cache
	return c.orgs.Len() + c.names.Len() + c.admins.Len() + c.members.Len() + c.revoked.Len(), nil
}

// WithCheapPasswordHashes replaces bcrypt with one SHA-256, for tests of
// journaling and races whose setup would otherwise spend minutes in
// bcrypt under the race detector. Never outside tests.
func WithCheapPasswordHashes() Option {
	return func(c *config) error {
		c.cheapHashes = &passwordHashes{
			generate: func(password []byte, _ int) ([]byte, error) {
				sum := sha256.Sum256(password)
				return []byte("cheap$" + hex.EncodeToString(sum[:])), nil
			},
			compare: func(hash, password []byte) error {
				sum := sha256.Sum256(password)
				if string(hash) != "cheap$"+hex.EncodeToString(sum[:]) {
					return errors.New("mismatch")
				}
				return nil
			},
		}
		return nil
	}
}
