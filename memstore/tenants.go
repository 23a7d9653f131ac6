package memstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tenancy/tenancy"
)

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
