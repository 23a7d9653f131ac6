package tenancy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Errors of the limits on tenant data.
var (
	// ErrQuotaExceeded reports an insert into a tenant that holds its
	// quota of documents (see WithTenantQuota). It comes inside a
	// *ConflictError, so it also matches ErrConflict.
	ErrQuotaExceeded = errors.New("tenant document quota reached")
	// ErrReadsBusy reports a page read (Tenant.List) that waited for
	// one of its organization's page-read slots (see WithTenantPageReads)
	// until its context ended. It comes inside a *RetryError.
	ErrReadsBusy = errors.New("too many page reads of one organization at once")
	// ErrRenaming reports a tenant call that waited for a rename of its
	// organization to finish until its context ended.
	ErrRenaming = errors.New("organization is being renamed")
)

// defaultTenantPageReads is how many Tenant.List calls of one organization
// run at once unless WithTenantPageReads says otherwise.
const defaultTenantPageReads = 2

// quotaRecount is how long a tenant's document count is trusted before it
// is read from the store again, so that inserts by other processes count
// within that time.
const quotaRecount = time.Minute

// WithTenantQuota limits each organization's tenant collection to n
// documents inserted through Tenant.Insert (0, the default, for no
// limit). An insert past it returns a *ConflictError matching
// ErrQuotaExceeded; httpapi answers 409. The count is read from the store
// once a minute per tenant and kept in memory between reads, adding the
// inserts and deletes made through this Manager: several processes
// writing one tenant can together pass the quota by what the others
// insert within a minute. On the embedded FerretDB a page of tenant
// documents costs time in proportion to the tenant's size (see
// Tenant.List), and a quota is what bounds it.
func WithTenantQuota(n int64) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("tenancy: tenant quota is %d, must be 0 (none) or more", n)
		}
		c.quota = n
		return nil
	}
}

// WithTenantPageReads sets how many Tenant.List calls of one organization
// run at once (default 2): the others wait for a slot, until
// their context ends, and then get a *RetryError of ErrReadsBusy. Other
// organizations' calls do not wait for them.
func WithTenantPageReads(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("tenancy: tenant page reads is %d, must be at least 1", n)
		}
		c.pageReads = n
		return nil
	}
}

// tenantLimits holds the state of the tenant quota and page-read slots.
type tenantLimits struct {
	quota     int64
	pageReads int

	mu     sync.Mutex
	counts map[string]*tenantCount // by collection
	slots  map[OrgID]*pageSlots
}

// tenantCount is the document count of one tenant collection.
type tenantCount struct {
	mu   sync.Mutex
	n    int64
	read time.Time // zero until read from the store
}

type pageSlots struct {
	ch   chan struct{}
	refs int
}

// acquirePage takes one of org id's page-read slots, waiting until ctx
// ends, and returns its release.
func (m *Manager) acquirePage(ctx context.Context, id OrgID) (func(), error) {
	l := &m.limits
	l.mu.Lock()
	if l.slots == nil {
		l.slots = make(map[OrgID]*pageSlots)
	}
	s := l.slots[id]
	if s == nil {
		s = &pageSlots{ch: make(chan struct{}, l.pageReads)}
		l.slots[id] = s
	}
	s.refs++
	l.mu.Unlock()
	done := func() {
		l.mu.Lock()
		if s.refs--; s.refs == 0 {
			delete(l.slots, id)
		}
		l.mu.Unlock()
	}
	select {
	case s.ch <- struct{}{}:
		return func() { <-s.ch; done() }, nil
	default:
	}
	select {
	case s.ch <- struct{}{}:
		return func() { <-s.ch; done() }, nil
	case <-ctx.Done():
		done()
		return nil, &RetryError{Kind: ErrReadsBusy, After: time.Second}
	}
}

// reserveDocument counts one more document in collection, or refuses it
// past the quota. The returned function gives the reservation back (an
// insert that failed).
func (m *Manager) reserveDocument(ctx context.Context, collection string) (undo func(), err error) {
	l := &m.limits
	if l.quota == 0 {
		return func() {}, nil
	}
	c := l.count(collection)
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := m.now(); c.read.IsZero() || now.Sub(c.read) > quotaRecount {
		n, err := m.collections.CountTenantDocuments(ctx, collection)
		if err != nil {
			return nil, fmt.Errorf("count tenant documents: %w", err)
		}
		// The collection's metadata document is not a tenant document.
		c.n, c.read = max(n-1, 0), now
	}
	if c.n >= l.quota {
		return nil, &ConflictError{Field: "data",
			Message: fmt.Sprintf("cannot be stored: the organization holds its quota of %d documents; delete some first", l.quota),
			Err:     ErrQuotaExceeded}
	}
	c.n++
	return func() { l.forget(collection, 1) }, nil
}

// forget counts n documents fewer in collection.
func (l *tenantLimits) forget(collection string, n int64) {
	if l.quota == 0 {
		return
	}
	c := l.count(collection)
	c.mu.Lock()
	c.n = max(c.n-n, 0)
	c.mu.Unlock()
}

func (l *tenantLimits) count(collection string) *tenantCount {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil {
		l.counts = make(map[string]*tenantCount)
	}
	c := l.counts[collection]
	if c == nil {
		c = &tenantCount{}
		l.counts[collection] = c
	}
	return c
}
