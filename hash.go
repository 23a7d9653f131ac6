package tenancy

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// The bcrypt work of the Manager: hashing and comparing passwords in a
// bounded pool of slots, at a lower OS priority when there are spare
// processors.

// hashPassword returns the hash of password, made in a hash slot.
func (m *Manager) hashPassword(ctx context.Context, password string) ([]byte, error) {
	release, err := m.acquireHash(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	var h []byte
	generate := generateHash
	if m.cheapHashes != nil {
		generate = m.cheapHashes.generate
	}
	m.hashing(func() { h, err = generate([]byte(password), m.cost) })
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// acquireHash takes one of the slots bcrypt work runs in (as many as
// WithHashConcurrency, by default one per CPU). A burst queues: up to
// WithHashQueue waiters per slot wait, each at most the hash wait; past
// that queue a request is refused at once with ErrOverloaded, so that a
// flood of logins costs a refusal each instead of taking every CPU from
// other requests.
func (m *Manager) acquireHash(ctx context.Context) (release func(), err error) {
	defer m.hashWaited(time.Now())
	select {
	case m.hashSlots <- struct{}{}:
		return func() { <-m.hashSlots }, nil
	default:
	}
	if m.hashWaiting.Add(1) > int64(m.hashQueue) {
		m.hashWaiting.Add(-1)
		return nil, &RetryError{Kind: ErrOverloaded, After: time.Second}
	}
	defer m.hashWaiting.Add(-1)
	t := time.NewTimer(m.hashWait)
	defer t.Stop()
	select {
	case m.hashSlots <- struct{}{}:
		return func() { <-m.hashSlots }, nil
	case <-t.C:
		return nil, &RetryError{Kind: ErrOverloaded, After: time.Second}
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// compare runs one bcrypt comparison in a hash slot.
func (m *Manager) compare(ctx context.Context, hash []byte, password string) (match bool, err error) {
	release, err := m.acquireHash(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	cmp := compareHash
	if m.cheapHashes != nil {
		cmp = m.cheapHashes.compare
	}
	m.hashing(func() { match = cmp(hash, []byte(password)) == nil })
	return match, nil
}

// hashing runs bcrypt work f. When the Go scheduler has more processors
// than bcrypt slots (GOMAXPROCS above the core count, say), f runs on a
// thread of lower OS priority, so that request handlers on the spare
// processor get the CPU first during a login flood; otherwise lowering
// the priority would only slow the processors bcrypt holds.
func (m *Manager) hashing(f func()) {
	if runtime.GOMAXPROCS(0) > cap(m.hashSlots) {
		lowPriority(f)
		return
	}
	f()
}

// bcryptBase64 is the alphabet bcrypt writes salts and digests in.
var bcryptBase64 = base64.NewEncoding("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789").WithPadding(base64.NoPadding)

// newDummyHash returns a bcrypt hash of cost that no password matches, so
// that a login for an unknown email costs the same as a wrong password:
// a random salt (16 bytes) and a random digest (23 bytes), which a
// password matches with a chance of 2^-184. It is written, not computed,
// so that New has it at once at any cost, and no login waits for it
// outside the hash slots.
func newDummyHash(cost int) []byte {
	var b [16 + 23]byte
	rand.Read(b[:])
	return fmt.Appendf(nil, "$2a$%02d$%s%s", cost, bcryptBase64.EncodeToString(b[:16]), bcryptBase64.EncodeToString(b[16:]))
}

// passwordHashes replace bcrypt in tests of what is not about passwords
// (see export_test.go), whose setup would otherwise spend its time in
// bcrypt under the race detector.
type passwordHashes struct {
	generate func(password []byte, cost int) ([]byte, error)
	compare  func(hash, password []byte) error
}

// compareHash and generateHash are bcrypt's; tests count their calls.
var (
	compareHash  = bcrypt.CompareHashAndPassword
	generateHash = bcrypt.GenerateFromPassword
)
