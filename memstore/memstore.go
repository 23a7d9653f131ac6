// Package memstore is an in-memory tenancy.Store: the Store contract in its
// simplest form, for unit tests and examples. Nothing survives the process.
package memstore

import (
	"context"
	"sync"
	"time"

	"github.com/tenancy/tenancy"
)

var _ tenancy.Store = (*Store)(nil)

// Store is an in-memory tenancy.Store. The zero value is not usable; call
// New. It is safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	names   map[string]tenancy.Reservation
	orgs    map[tenancy.OrgID]*tenancy.Org
	admins  map[tenancy.AdminID]*tenancy.Admin
	tenants map[string]map[string]map[string]any // collection → _id → document
	seq     uint64
	locks   map[tenancy.OrgID]lock
	journal map[tenancy.OrgID]*tenancy.Operation
	// failures of addresses without an admin account
	attempts map[string]attempt
	revoked  map[string]time.Time

	members     map[memberKey]*tenancy.Membership
	invitations map[string]*tenancy.Invitation
	events      map[tenancy.OrgID]*orgEvents
}

type attempt struct {
	n    int
	last time.Time
}

type lock struct {
	owner   string
	expires time.Time
}

// New returns an empty Store.
func New() *Store {
	return &Store{
		names:    make(map[string]tenancy.Reservation),
		orgs:     make(map[tenancy.OrgID]*tenancy.Org),
		admins:   make(map[tenancy.AdminID]*tenancy.Admin),
		tenants:  make(map[string]map[string]map[string]any),
		locks:    make(map[tenancy.OrgID]lock),
		journal:  make(map[tenancy.OrgID]*tenancy.Operation),
		attempts: make(map[string]attempt),
		revoked:  make(map[string]time.Time),

		members:     make(map[memberKey]*tenancy.Membership),
		invitations: make(map[string]*tenancy.Invitation),
		events:      make(map[tenancy.OrgID]*orgEvents),
	}
}

// lock takes the mutex unless ctx is done.
func (s *Store) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	return nil
}
