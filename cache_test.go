package tenancy_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/memstore"
)

// testClock is a Manager clock that tests move.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *testClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *testClock) add(d time.Duration) { c.ns.Add(int64(d)) }
func (c *testClock) opt() tenancy.Option { return tenancy.WithClock(c.now) }

// TestCacheReadsOwnWrites checks that a Manager with a cache whose entries
// would stay for an hour sees its own rename and delete at its next read:
// each write drops what it changed. (TestAuthenticateTokenRevocations
// does the same for password changes and logouts.)
func TestCacheReadsOwnWrites(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		m := newManager(t, store, tenancy.WithCache(1000, time.Hour))
		org := createAcme(t, m)
		tok, err := m.Login(ctx, "admin@acme.com", "MySecurePassword123")
		require.NoError(t, err)
		_, err = m.OrgByName(ctx, "Acme Corporation")
		require.NoError(t, err)
		_, err = m.AuthenticateToken(ctx, tok.AccessToken)
		require.NoError(t, err)
		n, err := tenancy.CacheLen(m)
		require.NoError(t, err)
		assert.Positive(t, n, "the reads filled the cache")

		_, err = m.RenameOrg(ctx, org.ID, "Acme Global")
		require.NoError(t, err)
		_, err = m.OrgByName(ctx, "Acme Corporation")
		assert.ErrorIs(t, err, tenancy.ErrNotFound, "the old name, at once after the rename")
		got, err := m.OrgByName(ctx, "Acme Global")
		require.NoError(t, err)
		assert.Equal(t, "tenant_acme_global", got.TenantCollection)
		got, err = m.OrgByID(ctx, org.ID)
		require.NoError(t, err)
		assert.Equal(t, "Acme Global", got.Name)
		_, err = m.AuthenticateToken(ctx, tok.AccessToken)
		require.NoError(t, err, "a rename keeps the tokens")

		require.NoError(t, m.DeleteOrg(ctx, org.ID))
		_, err = m.OrgByName(ctx, "Acme Global")
		assert.ErrorIs(t, err, tenancy.ErrNotFound)
		_, err = m.OrgByID(ctx, org.ID)
		assert.ErrorIs(t, err, tenancy.ErrNotFound)
		_, err = m.AuthenticateToken(ctx, tok.AccessToken)
		assert.ErrorIs(t, err, tenancy.ErrUnauthenticated, "a token of the deleted organization")
	})
}

// TestCacheStalenessBound runs two Managers on one database: reader
// caches with a bound of a minute, writer does not cache. The reader may
// serve what it read before the writer's change while its entries are
// younger than the bound, and it does here (the cache is in use), but once
// the bound has passed, measured on the Manager clock, it sees every
// change.
func TestCacheStalenessBound(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		const bound = time.Minute
		clock := newTestClock()
		reader := newManager(t, store, clock.opt(), tenancy.WithCache(1000, bound))
		writer := newManager(t, store, clock.opt())
		org := createAcme(t, writer)
		tok, err := writer.Login(ctx, "admin@acme.com", "MySecurePassword123")
		require.NoError(t, err)
		_, err = reader.OrgByName(ctx, "Acme Corporation")
		require.NoError(t, err)
		claims, err := reader.AuthenticateToken(ctx, tok.AccessToken)
		require.NoError(t, err)

		// Another process renames and logs the token out.
		_, err = writer.RenameOrg(ctx, org.ID, "Acme Global")
		require.NoError(t, err)
		require.NoError(t, writer.Logout(ctx, claims))

		clock.add(bound - time.Second)
		got, err := reader.OrgByName(ctx, "Acme Corporation")
		require.NoError(t, err, "within the bound the cached record may be served")
		assert.Equal(t, "Acme Corporation", got.Name)
		_, err = reader.AuthenticateToken(ctx, tok.AccessToken)
		assert.NoError(t, err, "within the bound the cached revocation state may be served")

		clock.add(time.Second)
		_, err = reader.OrgByName(ctx, "Acme Corporation")
		assert.ErrorIs(t, err, tenancy.ErrNotFound, "the rename, once the bound has passed")
		got, err = reader.OrgByName(ctx, "Acme Global")
		require.NoError(t, err)
		assert.Equal(t, org.ID, got.ID)
		_, err = reader.AuthenticateToken(ctx, tok.AccessToken)
		assert.ErrorIs(t, err, tenancy.ErrUnauthenticated, "the logout, once the bound has passed")

		// A delete, seen within the bound too.
		tok2, err := writer.Login(ctx, "admin@acme.com", "MySecurePassword123")
		require.NoError(t, err)
		_, err = reader.AuthenticateToken(ctx, tok2.AccessToken)
		require.NoError(t, err)
		require.NoError(t, writer.DeleteOrg(ctx, org.ID))
		clock.add(bound)
		_, err = reader.OrgByID(ctx, org.ID)
		assert.ErrorIs(t, err, tenancy.ErrNotFound)
		_, err = reader.AuthenticateToken(ctx, tok2.AccessToken)
		assert.ErrorIs(t, err, tenancy.ErrUnauthenticated)
	})
}

// TestCacheBoundedUnderUnknownNames looks up 100,000 distinct names no
// organization holds, and then more known records than the cache holds:
// the cache stays within its bound.
func TestCacheBoundedUnderUnknownNames(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		const size = 10
		m := newManager(t, store, tenancy.WithCache(size, time.Hour))
		const lookups, workers = 100_000, 8
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < lookups; i += workers {
					_, err := m.OrgByName(ctx, fmt.Sprintf("Nobody %d", i))
					if !assert.ErrorIs(t, err, tenancy.ErrNotFound) {
						return
					}
				}
			})
		}
		wg.Wait()
		n, err := tenancy.CacheLen(m)
		require.NoError(t, err)
		assert.Zero(t, n, "unknown names are not kept")

		for i := range 2 * size {
			org, err := m.CreateOrg(ctx, tenancy.CreateOrgParams{Name: fmt.Sprintf("Org %d", i), AdminEmail: fmt.Sprintf("a%d@example.com", i), AdminPassword: "password123"})
			require.NoError(t, err)
			_, err = m.OrgByName(ctx, org.Name)
			require.NoError(t, err)
		}
		n, err = tenancy.CacheLen(m)
		require.NoError(t, err)
		assert.LessOrEqual(t, n, 4*size, "each of the four maps holds at most size entries")
		assert.Positive(t, n)
	})
}

func TestCacheOptionsRefused(t *testing.T) {
	for name, opt := range map[string]tenancy.Option{
		"size 0":              tenancy.WithCache(0, time.Second),
		"no staleness bound":  tenancy.WithCache(10, 0),
		"sole writer, size 0": tenancy.WithSoleWriterCache(0),
	} {
		_, err := tenancy.New(memstore.New(), tenancy.WithSigningSecret(testSecret), opt)
		assert.ErrorContains(t, err, "cache", name)
	}
}

// pausingStore pauses one OrgByID, once armed, after it has read and
// before it returns.
type pausingStore struct {
	tenancy.Store
	armed         atomic.Bool
	read, release chan struct{}
}

func (s *pausingStore) OrgByID(ctx context.Context, id tenancy.OrgID) (*tenancy.Org, error) {
	org, err := s.Store.OrgByID(ctx, id)
	if s.armed.CompareAndSwap(true, false) {
		s.read <- struct{}{}
		<-s.release
	}
	return org, err
}

// TestCacheFillRacingWrite has a reader read an organization, then a
// rename of it complete, then the reader go on to fill the cache: what it
// read before the rename must not be kept, or a sole writer's cache would
// serve the old name for as long as the entry stays.
func TestCacheFillRacingWrite(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		ps := &pausingStore{Store: store, read: make(chan struct{}), release: make(chan struct{})}
		m := newManager(t, ps, tenancy.WithSoleWriterCache(100))
		org := createAcme(t, m)
		ps.armed.Store(true)
		done := make(chan *tenancy.Org)
		go func() {
			got, err := m.OrgByID(ctx, org.ID)
			assert.NoError(t, err)
			done <- got
		}()
		<-ps.read
		_, err := m.RenameOrg(ctx, org.ID, "ACME corporation")
		require.NoError(t, err)
		close(ps.release)
		assert.Equal(t, "Acme Corporation", (<-done).Name, "the reader read before the rename")
		got, err := m.OrgByID(ctx, org.ID)
		require.NoError(t, err)
		assert.Equal(t, "ACME corporation", got.Name, "the cache was not filled with what the reader read before the rename")
	})
}

// TestCacheTenantCallsAfterAnotherProcessRenames has another process
// rename an organization that this one has cached, and then create a new
// organization under the old name, which takes the old collection name:
// this process's tenant calls must reach the renamed organization's
// documents, never the new one's, and must read their own inserts, at
// once, whatever the staleness bound.
func TestCacheTenantCallsAfterAnotherProcessRenames(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		other := newManager(t, store)
		here := newManager(t, store, tenancy.WithCache(1000, time.Hour))
		acme := createAcme(t, other)
		mine, err := other.Tenant(acme.ID).Insert(ctx, map[string]any{"owner": "acme"})
		require.NoError(t, err)
		_, err = here.Tenant(acme.ID).Get(ctx, mine.ID)
		require.NoError(t, err, "this process caches acme")

		_, err = other.RenameOrg(ctx, acme.ID, "Acme Global")
		require.NoError(t, err)
		beta, err := other.CreateOrg(ctx, tenancy.CreateOrgParams{Name: "Acme Corporation", AdminEmail: "b@beta.com", AdminPassword: "password123"})
		require.NoError(t, err)
		require.Equal(t, "tenant_acme_corporation", beta.TenantCollection, "the new organization has the old collection name")
		theirs, err := other.Tenant(beta.ID).Insert(ctx, map[string]any{"owner": "beta"})
		require.NoError(t, err)

		docs, err := here.Tenant(acme.ID).List(ctx, "", 100)
		require.NoError(t, err)
		var ids []string
		for _, d := range docs {
			ids = append(ids, d.ID)
		}
		assert.Equal(t, []string{mine.ID}, ids, "acme's documents, not the new organization's")
		_, err = here.Tenant(acme.ID).Get(ctx, theirs.ID)
		assert.ErrorIs(t, err, tenancy.ErrNotFound, "another organization's document")
		assert.ErrorIs(t, here.Tenant(acme.ID).Delete(ctx, theirs.ID), tenancy.ErrNotFound, "another organization's document")
		_, err = other.Tenant(beta.ID).Get(ctx, theirs.ID)
		assert.NoError(t, err, "the new organization's document is still there")

		inserted, err := here.Tenant(acme.ID).Insert(ctx, map[string]any{"n": 1})
		require.NoError(t, err)
		_, err = here.Tenant(acme.ID).Get(ctx, inserted.ID)
		assert.NoError(t, err, "this process reads its own insert")
	})
}

// TestCacheNewTokenFromAnotherProcess has another process change the
// password: the token it answers with works here at once, though this
// process cached the account before the change.
func TestCacheNewTokenFromAnotherProcess(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		other := newManager(t, store)
		here := newManager(t, store, tenancy.WithCache(1000, time.Hour))
		createAcme(t, other)
		tok, err := other.Login(ctx, "admin@acme.com", "MySecurePassword123")
		require.NoError(t, err)
		claims, err := here.AuthenticateToken(ctx, tok.AccessToken)
		require.NoError(t, err, "this process caches the account")
		fresh, err := other.ChangePassword(ctx, claims, "MySecurePassword123", "AnotherPassword456")
		require.NoError(t, err)
		_, err = here.AuthenticateToken(ctx, fresh.AccessToken)
		assert.NoError(t, err, "the new token, at once")
	})
}

// TestCacheRoleChangesAndRemovals checks that role changes and removals
// of members are seen at once by the Manager that makes them, and by
// another Manager once its staleness bound has passed.
func TestCacheRoleChangesAndRemovals(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		const bound = time.Minute
		clock := newTestClock()
		m := newManager(t, store, cheap, clock.opt(), tenancy.WithSoleWriterCache(1000))
		owner, _, member := team(t, m)
		tok, err := m.LoginTo(ctx, "member@a.com", pw, "Org A")
		require.NoError(t, err)
		reader := newManager(t, store, cheap, clock.opt(), tenancy.WithCache(1000, bound))
		for _, mgr := range []*tenancy.Manager{m, reader} {
			c, err := mgr.AuthenticateToken(ctx, tok.AccessToken)
			require.NoError(t, err)
			assert.Equal(t, tenancy.RoleMember, c.Role)
		}

		_, err = m.ChangeRole(ctx, owner, member.AdminID, tenancy.RoleAdmin)
		require.NoError(t, err)
		c, err := m.AuthenticateToken(ctx, tok.AccessToken)
		require.NoError(t, err)
		assert.Equal(t, tenancy.RoleAdmin, c.Role, "its own role change, at once")
		c, err = reader.AuthenticateToken(ctx, tok.AccessToken)
		require.NoError(t, err)
		assert.Equal(t, tenancy.RoleMember, c.Role, "within the bound the cached role may be served")
		clock.add(bound)
		c, err = reader.AuthenticateToken(ctx, tok.AccessToken)
		require.NoError(t, err)
		assert.Equal(t, tenancy.RoleAdmin, c.Role, "the role change, once the bound has passed")

		require.NoError(t, m.RemoveMember(ctx, owner, member.AdminID))
		_, err = m.AuthenticateToken(ctx, tok.AccessToken)
		assert.ErrorIs(t, err, tenancy.ErrUnauthenticated, "its own removal, at once")
		clock.add(bound)
		_, err = reader.AuthenticateToken(ctx, tok.AccessToken)
		assert.ErrorIs(t, err, tenancy.ErrUnauthenticated, "the removal, once the bound has passed")
	})
}
