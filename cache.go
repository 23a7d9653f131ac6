package tenancy

import (
	"context"
	"fmt"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// WithCache keeps the records every request reads in memory: organizations
// by id and by identifier, accounts by id (with their token generation),
// memberships and the revocation state of tokens, at most size of each, least recently
// used first out. GET /org/get, AuthenticateToken and tenant reads then
// cost no database round trip for a record in the cache.
//
// Every write through this Manager updates the cache before it is
// acknowledged, so the Manager always reads its own writes. Writes by
// other processes are not seen until an entry is older than maxStale: a
// rename, delete, password change, logout, role change or removal of a
// member made elsewhere is seen within
// maxStale, and never later. A revocation that may lag is a security
// property: choose maxStale knowingly. Tenant calls check the
// organization in the database after they run, and run again where it
// moved (tenant writes read it from the database before, too), so that
// no call reaches a collection another process has moved or given to
// another organization, and a process reads its own tenant writes.
// A token newer than the cached account (a password changed elsewhere)
// reads the account again.
//
// Names that no organization holds are never cached, so lookups of
// unknown names cannot grow memory.
func WithCache(size int, maxStale time.Duration) Option {
	return func(c *config) error {
		if size < 1 || maxStale <= 0 {
			return fmt.Errorf("tenancy: cache of %d entries, stale for at most %v: want size >= 1 and maxStale > 0 (WithSoleWriterCache for no bound)", size, maxStale)
		}
		c.cacheSize, c.cacheStale = size, maxStale
		return nil
	}
}

// WithSoleWriterCache is WithCache for a Manager that is the only writer of
// its database, such as the reference server's embedded one (its data
// directory is locked by the serving process, and its database reached
// only through a Unix socket in a directory of mode 0700):
// the cache is exact, entries never go stale, and tenant writes use it
// too. Do not use it where another process may write.
func WithSoleWriterCache(size int) Option {
	return func(c *config) error {
		if size < 1 {
			return fmt.Errorf("tenancy: cache of %d entries: want at least 1", size)
		}
		c.cacheSize, c.cacheStale = size, 0
		return nil
	}
}

// orgReader reads organizations by id.
type orgReader interface {
	OrgByID(ctx context.Context, id OrgID) (*Org, error)
}

// hotReads are the reads of every request, which WithCache serves from
// memory.
type hotReads interface {
	OrgByID(ctx context.Context, id OrgID) (*Org, error)
	OrgByIdentifier(ctx context.Context, identifier string) (*Org, error)
	AdminByID(ctx context.Context, id AdminID) (*Admin, error)
	Membership(ctx context.Context, org OrgID, admin AdminID) (*Membership, error)
	TokenRevoked(ctx context.Context, jti string) (bool, error)
}

// cached is a record read at a time.
type cached[V any] struct {
	v  V
	at time.Time
}

// cache is the memory of WithCache. Its read methods are hotReads over
// store; cachingStore drops what each write changes.
type cache struct {
	store    Store
	now      func() time.Time
	maxStale time.Duration // 0: never stale (sole writer)

	// mu orders fills after invalidations: a fill whose read began
	// before an invalidation (epoch moved) is not kept, since it may
	// hold what the write replaced.
	mu      sync.Mutex
	epoch   uint64
	orgs    *lru.Cache[OrgID, cached[Org]]
	names   *lru.Cache[string, OrgID] // identifier → org; checked against orgs
	admins  *lru.Cache[AdminID, cached[Admin]]
	members *lru.Cache[memberKey, cached[Membership]]
	revoked *lru.Cache[string, cached[bool]]
}

// memberKey names a membership in the cache.
type memberKey struct {
	org   OrgID
	admin AdminID
}

func newCache(store Store, size int, maxStale time.Duration, now func() time.Time) *cache {
	c := &cache{store: store, now: now, maxStale: maxStale}
	c.orgs, _ = lru.New[OrgID, cached[Org]](size)
	c.names, _ = lru.New[string, OrgID](size)
	c.admins, _ = lru.New[AdminID, cached[Admin]](size)
	c.members, _ = lru.New[memberKey, cached[Membership]](size)
	c.revoked, _ = lru.New[string, cached[bool]](size)
	return c
}

// fresh reports whether what was read at at may still be served.
func (c *cache) fresh(at time.Time) bool {
	return c.maxStale == 0 || c.now().Sub(at) < c.maxStale
}

// begin starts a fill: the epoch and the time the read starts at, which
// is the age of what it reads.
func (c *cache) begin() (uint64, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch, c.now()
}

// invalidate runs drop under the lock and ends every fill begun before.
func (c *cache) invalidate(drop func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	drop()
}

// fill runs keep under the lock if no invalidation came since epoch.
func (c *cache) fill(epoch uint64, keep func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch == epoch {
		keep()
	}
}

func (c *cache) OrgByID(ctx context.Context, id OrgID) (*Org, error) {
	if e, ok := c.orgs.Get(id); ok && c.fresh(e.at) {
		o := e.v
		return &o, nil
	}
	epoch, at := c.begin()
	org, err := c.store.OrgByID(ctx, id)
	if err != nil {
		return nil, err
	}
	c.fill(epoch, func() { c.orgs.Add(id, cached[Org]{*org, at}) })
	return org, nil
}

func (c *cache) OrgByIdentifier(ctx context.Context, identifier string) (*Org, error) {
	if id, ok := c.names.Get(identifier); ok {
		if e, ok := c.orgs.Get(id); ok && c.fresh(e.at) && e.v.Identifier == identifier {
			o := e.v
			return &o, nil
		}
	}
	epoch, at := c.begin()
	org, err := c.store.OrgByIdentifier(ctx, identifier)
	if err != nil {
		return nil, err // unknown names are not kept
	}
	if org.Identifier == identifier {
		c.fill(epoch, func() {
			c.orgs.Add(org.ID, cached[Org]{*org, at})
			c.names.Add(identifier, org.ID)
		})
	}
	return org, nil
}

// AdminByID returns the account without its password hash: the cache
// serves token checks, which do not need it, and keeps no hashes in
// memory.
func (c *cache) AdminByID(ctx context.Context, id AdminID) (*Admin, error) {
	if e, ok := c.admins.Get(id); ok && c.fresh(e.at) {
		a := e.v
		return &a, nil
	}
	epoch, at := c.begin()
	admin, err := c.store.AdminByID(ctx, id)
	if err != nil {
		return nil, err
	}
	admin.PasswordHash = nil
	kept := *admin
	c.fill(epoch, func() { c.admins.Add(id, cached[Admin]{kept, at}) })
	return admin, nil
}

// Membership caches the memberships found; a missing one is read again
// each time, so that lookups of memberships that do not exist cannot
// grow memory.
func (c *cache) Membership(ctx context.Context, org OrgID, admin AdminID) (*Membership, error) {
	k := memberKey{org, admin}
	if e, ok := c.members.Get(k); ok && c.fresh(e.at) {
		mb := e.v
		return &mb, nil
	}
	epoch, at := c.begin()
	mb, err := c.store.Membership(ctx, org, admin)
	if err != nil {
		return nil, err
	}
	c.fill(epoch, func() { c.members.Add(k, cached[Membership]{*mb, at}) })
	return mb, nil
}

func (c *cache) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	if e, ok := c.revoked.Get(jti); ok && c.fresh(e.at) {
		return e.v, nil
	}
	epoch, at := c.begin()
	yes, err := c.store.TokenRevoked(ctx, jti)
	if err != nil {
		return false, err
	}
	c.fill(epoch, func() { c.revoked.Add(jti, cached[bool]{yes, at}) })
	return yes, nil
}

// cachingStore is the Manager's store when it caches: every write goes to
// the store and then drops what it changed from the cache, whether it
// succeeded or not (a write that reports an error may have taken effect).
type cachingStore struct {
	Store
	c *cache
}

// lateWrite is how long after a write that failed cachingStore drops its
// entries again: a write whose reply was lost (a timeout) may still be
// applied after the first drop, and a read between the two would keep
// what it replaced.
var lateWrite = 30 * time.Second

// drop runs the invalidation drop after a write that returned err: at
// once, and again after lateWrite if the write failed.
func (s cachingStore) drop(err error, drop func()) {
	s.c.invalidate(drop)
	if err != nil {
		time.AfterFunc(lateWrite, func() { s.c.invalidate(drop) })
	}
}

func (s cachingStore) dropOrg(err error, id OrgID) {
	s.drop(err, func() { s.c.orgs.Remove(id) })
}

func (s cachingStore) CreateOrg(ctx context.Context, org *Org) error {
	err := s.Store.CreateOrg(ctx, org)
	s.dropOrg(err, org.ID)
	return err
}

func (s cachingStore) UpdateOrg(ctx context.Context, org *Org) error {
	err := s.Store.UpdateOrg(ctx, org)
	s.dropOrg(err, org.ID)
	return err
}

func (s cachingStore) DeleteOrg(ctx context.Context, id OrgID) error {
	err := s.Store.DeleteOrg(ctx, id)
	s.dropOrg(err, id)
	return err
}

func (s cachingStore) DeleteAdmin(ctx context.Context, id AdminID) error {
	err := s.Store.DeleteAdmin(ctx, id)
	s.drop(err, func() { s.c.admins.Remove(id) })
	return err
}

func (s cachingStore) SetAdminPassword(ctx context.Context, id AdminID, hash []byte) (int64, error) {
	gen, err := s.Store.SetAdminPassword(ctx, id, hash)
	s.drop(err, func() { s.c.admins.Remove(id) })
	return gen, err
}

func (s cachingStore) SetAdminHome(ctx context.Context, id AdminID, org OrgID) error {
	err := s.Store.SetAdminHome(ctx, id, org)
	s.drop(err, func() { s.c.admins.Remove(id) })
	return err
}

func (s cachingStore) dropMember(err error, org OrgID, admin AdminID) {
	s.drop(err, func() { s.c.members.Remove(memberKey{org, admin}) })
}

func (s cachingStore) AddMembership(ctx context.Context, mb *Membership) error {
	err := s.Store.AddMembership(ctx, mb)
	s.dropMember(err, mb.OrgID, mb.AdminID)
	return err
}

func (s cachingStore) SetMemberRole(ctx context.Context, org OrgID, admin AdminID, role Role) error {
	err := s.Store.SetMemberRole(ctx, org, admin, role)
	s.dropMember(err, org, admin)
	return err
}

func (s cachingStore) DeleteMembership(ctx context.Context, org OrgID, admin AdminID) error {
	err := s.Store.DeleteMembership(ctx, org, admin)
	s.dropMember(err, org, admin)
	return err
}

func (s cachingStore) RevokeToken(ctx context.Context, jti string, expires time.Time) error {
	err := s.Store.RevokeToken(ctx, jti, expires)
	s.drop(err, func() { s.c.revoked.Remove(jti) })
	return err
}

// dropCached drops org id's cached record, if m caches.
func (m *Manager) dropCached(id OrgID) {
	if m.cache != nil {
		m.cache.invalidate(func() { m.cache.orgs.Remove(id) })
	}
}
