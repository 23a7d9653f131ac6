// Package memstore is an in-memory tenancy.Store: the Store contract in its
// simplest form, for unit tests and examples. Nothing survives the process.
package memstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
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

func copyOrg(o *tenancy.Org) *tenancy.Org { c := *o; return &c }

func copyAdmin(a *tenancy.Admin) *tenancy.Admin {
	c := *a
	c.PasswordHash = slices.Clone(a.PasswordHash)
	return &c
}

// ReserveName implements tenancy.Store.
func (s *Store) ReserveName(ctx context.Context, identifier string, org tenancy.OrgID, at time.Time) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if r, ok := s.names[identifier]; ok {
		if r.OrgID != org {
			return fmt.Errorf("name %q is held by organization %s: %w", identifier, r.OrgID, tenancy.ErrConflict)
		}
		return nil
	}
	s.names[identifier] = tenancy.Reservation{Identifier: identifier, OrgID: org, ReservedAt: at}
	return nil
}

// ReleaseName implements tenancy.Store.
func (s *Store) ReleaseName(ctx context.Context, identifier string, org tenancy.OrgID) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.names[identifier].OrgID == org {
		delete(s.names, identifier)
	}
	return nil
}

// Reservations implements tenancy.Store.
func (s *Store) Reservations(ctx context.Context, before time.Time) ([]tenancy.Reservation, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []tenancy.Reservation
	for _, r := range s.names {
		if r.ReservedAt.Before(before) {
			out = append(out, r)
		}
	}
	return out, nil
}

// CreateOrg implements tenancy.Store.
func (s *Store) CreateOrg(ctx context.Context, org *tenancy.Org) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.orgs[org.ID]; ok {
		return fmt.Errorf("organization %s exists: %w", org.ID, tenancy.ErrConflict)
	}
	for _, o := range s.orgs {
		if o.Identifier == org.Identifier {
			return fmt.Errorf("identifier %q is used by organization %s: %w", org.Identifier, o.ID, tenancy.ErrConflict)
		}
	}
	s.orgs[org.ID] = copyOrg(org)
	return nil
}

// OrgByID implements tenancy.Store.
func (s *Store) OrgByID(ctx context.Context, id tenancy.OrgID) (*tenancy.Org, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	o, ok := s.orgs[id]
	if !ok {
		return nil, fmt.Errorf("organization %s: %w", id, tenancy.ErrNotFound)
	}
	return copyOrg(o), nil
}

// OrgByIdentifier implements tenancy.Store.
func (s *Store) OrgByIdentifier(ctx context.Context, identifier string) (*tenancy.Org, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	for _, o := range s.orgs {
		if o.Identifier == identifier {
			return copyOrg(o), nil
		}
	}
	return nil, fmt.Errorf("organization %q: %w", identifier, tenancy.ErrNotFound)
}

// UpdateOrg implements tenancy.Store.
func (s *Store) UpdateOrg(ctx context.Context, org *tenancy.Org) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	cur, ok := s.orgs[org.ID]
	if !ok {
		return fmt.Errorf("organization %s: %w", org.ID, tenancy.ErrNotFound)
	}
	if cur.Version != org.Version {
		return fmt.Errorf("organization %s is at version %d, not %d: %w", org.ID, cur.Version, org.Version, tenancy.ErrConflict)
	}
	for _, o := range s.orgs {
		if o.ID != org.ID && o.Identifier == org.Identifier {
			return fmt.Errorf("identifier %q is used by organization %s: %w", org.Identifier, o.ID, tenancy.ErrConflict)
		}
	}
	org.Version++
	s.orgs[org.ID] = copyOrg(org)
	return nil
}

// DeleteOrg implements tenancy.Store.
func (s *Store) DeleteOrg(ctx context.Context, id tenancy.OrgID) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.orgs[id]; !ok {
		return fmt.Errorf("organization %s: %w", id, tenancy.ErrNotFound)
	}
	delete(s.orgs, id)
	return nil
}

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
		out = append(out, &c)
	}
	slices.SortFunc(out, func(a, b *tenancy.Operation) int { return strings.Compare(string(a.OrgID), string(b.OrgID)) })
	return out, nil
}

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

// UnfinishedOrgs implements tenancy.Store.
func (s *Store) UnfinishedOrgs(ctx context.Context, before time.Time) ([]*tenancy.Org, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []*tenancy.Org
	for _, o := range s.orgs {
		if o.State != tenancy.OrgActive && o.ModifiedAt.Before(before) {
			out = append(out, copyOrg(o))
		}
	}
	return out, nil
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

// newID returns a fresh document id: 24 hex digits, like an ObjectID.
func (s *Store) newID() string {
	s.seq++
	return fmt.Sprintf("%024x", s.seq)
}

// CreateTenantCollection implements tenancy.Store.
func (s *Store) CreateTenantCollection(ctx context.Context, name string, owner tenancy.OrgID, createdAt time.Time) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.tenants[name]; ok {
		return fmt.Errorf("collection %s exists: %w", name, tenancy.ErrConflict)
	}
	id := s.newID()
	s.tenants[name] = map[string]map[string]any{id: {"_id": id, "metadata": map[string]any{
		"created_at": createdAt, "schema_version": "1.0", "org_id": string(owner),
	}}}
	return nil
}

// isMetadata reports whether doc is a collection's metadata document.
func isMetadata(doc map[string]any) bool {
	md, ok := doc["metadata"].(map[string]any)
	if !ok {
		return false
	}
	_, ok = md["org_id"]
	return ok
}

// TenantCollectionOwner implements tenancy.Store.
func (s *Store) TenantCollectionOwner(ctx context.Context, name string) (tenancy.OrgID, error) {
	if err := s.lock(ctx); err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	for _, doc := range s.tenants[name] {
		if isMetadata(doc) {
			if owner, ok := doc["metadata"].(map[string]any)["org_id"].(string); ok {
				return tenancy.OrgID(owner), nil
			}
		}
	}
	return "", fmt.Errorf("owner of collection %s: %w", name, tenancy.ErrNotFound)
}

// TenantCollectionExists implements tenancy.Store.
func (s *Store) TenantCollectionExists(ctx context.Context, name string) (bool, error) {
	if err := s.lock(ctx); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	_, ok := s.tenants[name]
	return ok, nil
}

// CountTenantDocuments implements tenancy.Store.
func (s *Store) CountTenantDocuments(ctx context.Context, name string) (int64, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	return int64(len(s.tenants[name])), nil
}

// RenameTenantCollection implements tenancy.Store.
func (s *Store) RenameTenantCollection(ctx context.Context, from, to string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	docs, ok := s.tenants[from]
	if !ok {
		return fmt.Errorf("collection %s: %w", from, tenancy.ErrNotFound)
	}
	if _, ok := s.tenants[to]; ok {
		return fmt.Errorf("collection %s exists: %w", to, tenancy.ErrConflict)
	}
	s.tenants[to] = docs
	delete(s.tenants, from)
	return nil
}

// DropTenantCollection implements tenancy.Store.
func (s *Store) DropTenantCollection(ctx context.Context, name string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	delete(s.tenants, name)
	return nil
}

// CopyTenantDocuments implements tenancy.Store, in one batch.
func (s *Store) CopyTenantDocuments(ctx context.Context, from, to string, progress func(int64)) (int64, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	src := s.tenants[from]
	dst := s.tenants[to]
	if dst == nil {
		dst = make(map[string]map[string]any, len(src))
		s.tenants[to] = dst
	}
	for id, doc := range src {
		if _, ok := dst[id]; !ok {
			dst[id] = cloneMap(doc)
		}
	}
	if progress != nil {
		progress(int64(len(src)))
	}
	return int64(len(src)), nil
}

// AddTenantDocument implements tenancy.Store.
func (s *Store) AddTenantDocument(ctx context.Context, collection string, doc *tenancy.Document) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	docs := s.tenants[collection]
	if _, ok := docs[doc.ID]; ok {
		return fmt.Errorf("document %s in %s: %w", doc.ID, collection, tenancy.ErrConflict)
	}
	if docs == nil {
		docs = make(map[string]map[string]any)
		s.tenants[collection] = docs
	}
	stored := cloneMap(doc.Data)
	stored["_id"] = doc.ID
	docs[doc.ID] = stored
	return nil
}

// TenantDocument implements tenancy.Store.
func (s *Store) TenantDocument(ctx context.Context, collection, id string) (*tenancy.Document, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	doc, ok := s.tenants[collection][id]
	if !ok || isMetadata(doc) {
		return nil, fmt.Errorf("document %s in %s: %w", id, collection, tenancy.ErrNotFound)
	}
	return toDocument(id, doc), nil
}

// TenantDocuments implements tenancy.Store.
func (s *Store) TenantDocuments(ctx context.Context, collection, after string, limit int) ([]*tenancy.Document, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	docs := s.tenants[collection]
	ids := make([]string, 0, len(docs))
	for id, doc := range docs {
		if id > after && !isMetadata(doc) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = ids[:min(limit, len(ids))]
	out := make([]*tenancy.Document, len(ids))
	for i, id := range ids {
		out[i] = toDocument(id, docs[id])
	}
	return out, nil
}

// DeleteTenantDocument implements tenancy.Store.
func (s *Store) DeleteTenantDocument(ctx context.Context, collection, id string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	doc, ok := s.tenants[collection][id]
	if !ok || isMetadata(doc) {
		return fmt.Errorf("document %s in %s: %w", id, collection, tenancy.ErrNotFound)
	}
	delete(s.tenants[collection], id)
	return nil
}

// InsertTenantDocument adds doc to the collection name under a new id,
// creating the collection if needed. It lets tests put data in a tenant
// collection the way an application writing to it directly would.
func (s *Store) InsertTenantDocument(ctx context.Context, name string, doc map[string]any) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.tenants[name] == nil {
		s.tenants[name] = make(map[string]map[string]any)
	}
	id := s.newID()
	stored := cloneMap(doc)
	stored["_id"] = id
	s.tenants[name][id] = stored
	return nil
}

func toDocument(id string, stored map[string]any) *tenancy.Document {
	data := cloneMap(stored)
	delete(data, "_id")
	return &tenancy.Document{ID: id, Data: data}
}

// cloneMap copies a document deeply, so that the store shares no maps or
// slices with its callers.
func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return cloneMap(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = cloneValue(e)
		}
		return out
	}
	return v
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
