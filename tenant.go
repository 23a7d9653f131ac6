package tenancy

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Limits of tenant documents.
const (
	// MaxListLimit is the most documents one List call (and one GET
	// /tenant/documents) returns.
	MaxListLimit = 100
	// MaxDocumentDepth is the deepest nesting of objects and arrays in a
	// document's Data.
	MaxDocumentDepth = 64
)

// Tenant is a handle on one organization's tenant data: every call finds
// the organization's current tenant collection and runs there. It is
// cheap to make (Manager.Tenant) and safe for concurrent use.
//
// A call that returns success has done its work in the collection the
// organization has when the call returns, even if the organization was
// renamed at that moment by another process: each call reads the
// organization record before and after it touches the collection, and if
// a rename or delete came between, it waits for that operation to finish
// and runs again in the new collection. An insert that landed in a
// collection a rename had already moved away (MongoDB creates a collection
// on first insert) is inserted again into the new collection under the
// same id, and the stray collection is dropped under a reservation of its
// name, so that no other organization can be using it. Such a call costs
// three database round trips: the record, the work, the record again.
type Tenant struct {
	m  *Manager
	id OrgID
}

// Tenant returns a handle on the tenant data of the organization id. It
// does no I/O; calls on it return ErrNotFound if the organization does not
// exist.
func (m *Manager) Tenant(id OrgID) *Tenant { return &Tenant{m: m, id: id} }

// Insert adds a document with data to the tenant collection and returns it
// with its new id. It returns a *ValidationError for data that cannot be
// stored: a field name that starts with "$", contains "." or NUL, a
// top-level "_id", a value of an unsupported type, a non-finite number, or
// nesting deeper than MaxDocumentDepth.
func (t *Tenant) Insert(ctx context.Context, data map[string]any) (*Document, error) {
	if err := checkDocument(data); err != nil {
		return nil, err
	}
	doc := &Document{ID: newDocumentID(t.m.now()), Data: data}
	runs := 0
	err := t.m.inTenant(ctx, t.id, tenantCall{inserted: doc.ID}, func(ctx context.Context, collection string) error {
		runs++
		undo, err := t.m.reserveDocument(ctx, collection)
		if err != nil {
			return err
		}
		err = t.m.documents.AddTenantDocument(ctx, collection, doc)
		if err != nil {
			undo()
		}
		if runs > 1 && errors.Is(err, ErrConflict) {
			// Our own insert of an earlier run, moved here by the rename,
			// unless another unique index of the collection refused it.
			if _, gerr := t.m.documents.TenantDocument(ctx, collection, doc.ID); gerr == nil {
				return nil
			}
		}
		return err
	})
	var verr *ValidationError
	if errors.Is(err, ErrInvalid) && !errors.As(err, &verr) {
		return nil, &ValidationError{Fields: []FieldError{{Field: "data",
			Message: "is refused by the database as a value it cannot store (FerretDB, for one, stores no arrays directly inside arrays)"}}}
	}
	if err != nil {
		return nil, err
	}
	return doc, nil
}

// Get returns the document id, or ErrNotFound.
func (t *Tenant) Get(ctx context.Context, id string) (*Document, error) {
	if err := checkDocumentID("id", id); err != nil {
		return nil, err
	}
	var doc *Document
	err := t.m.inTenant(ctx, t.id, tenantCall{readOnly: true}, func(ctx context.Context, collection string) error {
		var err error
		doc, err = t.m.documents.TenantDocument(ctx, collection, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return doc, nil
}

// List returns up to limit documents (1 to MaxListLimit) in id order, which
// is insertion order to the second, starting after the document with id
// after ("" for the first page). The tenant collection's metadata document
// is not listed. At most WithTenantPageReads calls of one organization run
// at once; a call that waits for a slot until ctx ends gets a *RetryError
// of ErrReadsBusy. On MongoDB a page costs a page, through the _id index;
// on FerretDB, which filters and sorts in memory, mongostore streams the
// ids and keeps the smallest, so a page's memory is bounded by its limit
// but its time grows with the tenant (see WithTenantQuota).
func (t *Tenant) List(ctx context.Context, after string, limit int) ([]*Document, error) {
	var verr ValidationError
	if after != "" {
		if err := checkDocumentID("after", after); err != nil {
			return nil, err
		}
	}
	if limit < 1 || limit > MaxListLimit {
		verr.add("limit", fmt.Sprintf("must be between 1 and %d", MaxListLimit))
		return nil, verr.err()
	}
	release, err := t.m.acquirePage(ctx, t.id)
	if err != nil {
		return nil, err
	}
	defer release()
	var docs []*Document
	err = t.m.inTenant(ctx, t.id, tenantCall{readOnly: true}, func(ctx context.Context, collection string) error {
		var err error
		docs, err = t.m.documents.TenantDocuments(ctx, collection, after, limit)
		return err
	})
	if err != nil {
		return nil, err
	}
	return docs, nil
}

// Delete removes the document id. It returns ErrNotFound if there is no
// such document.
func (t *Tenant) Delete(ctx context.Context, id string) error {
	if err := checkDocumentID("id", id); err != nil {
		return err
	}
	deleted := false
	err := t.m.inTenant(ctx, t.id, tenantCall{}, func(ctx context.Context, collection string) error {
		err := t.m.documents.DeleteTenantDocument(ctx, collection, id)
		if err == nil {
			deleted = true
			t.m.limits.forget(collection, 1)
		}
		if errors.Is(err, ErrNotFound) && deleted {
			// An earlier run deleted it before the collection moved.
			return nil
		}
		return err
	})
	return err
}

// InTenant runs fn with the name of the organization id's current tenant
// collection, for stores whose callers want to query that collection
// themselves (mongostore.Store.Collection gives its handle). It gives the
// guarantee Tenant's methods give: when InTenant returns nil, fn's last run
// did its work in the collection the organization has now. To keep it, fn
// may run more than once, in the old collection and then in the new one,
// so its writes must be safe to repeat: inserts with an _id chosen before
// the call (a duplicate key on a later run means the document is there),
// $set updates and deletes by _id, not $inc or inserts of fresh ids. An
// error from fn is returned as is, once the organization is found stable.
// It returns ErrNotFound if the organization does not exist or is deleted
// meanwhile.
func (m *Manager) InTenant(ctx context.Context, id OrgID, fn func(ctx context.Context, collection string) error) error {
	return m.inTenant(ctx, id, tenantCall{inserted: anyDocument}, fn)
}

// overtaken counts the runs of tenant calls that a rename or delete
// overtook, for tests.
var overtaken atomic.Int64

// anyDocument tells inTenant that fn may write any document.
const anyDocument = "*"

// tenantCall says what the fn of an inTenant call does.
type tenantCall struct {
	// readOnly: fn only reads. A read may start from a cached record
	// that may be stale, since the check after it reads the database
	// and runs it again if the organization moved; a write may not.
	readOnly bool
	// inserted, if not empty: fn inserts (the document with that id, or
	// anyDocument), so it may create a collection, which is swept if a
	// rename moved the collection away under it.
	inserted string
}

// inTenant runs fn in org id's current tenant collection until a run is
// not overtaken by a rename or delete.
func (m *Manager) inTenant(ctx context.Context, id OrgID, call tenantCall, fn func(ctx context.Context, collection string) error) error {
	inserted := call.inserted
	writes := inserted != ""
	first := m.exactReads
	if call.readOnly {
		first = m.reads
	}
	org, err := m.settledOrg(ctx, first, id)
	if err != nil {
		return err
	}
	var stale []*Org
	for {
		fnErr := fn(ctx, org.TenantCollection)
		// Even a failed run is checked: a read may have missed because
		// the collection moved.
		after, err := m.settledOrg(ctx, m.exactReads, id)
		if err != nil && ctx.Err() != nil && writes {
			// The caller gave up, but what fn wrote may sit in a
			// collection a rename made stray: check without the caller.
			m.cleanUpAbandoned(ctx, id, org, stale, inserted)
			return err
		}
		if errors.Is(err, ErrNotFound) && writes {
			// Deleted meanwhile: what fn wrote was never acknowledged,
			// and its collection may have been made again by fn.
			m.sweep(ctx, id, append(stale, org), nil, inserted)
		}
		if err != nil {
			return err
		}
		if after.Version == org.Version {
			if writes && len(stale) > 0 {
				m.sweep(ctx, id, stale, after, inserted)
			}
			return fnErr
		}
		if writes && after.TenantCollection != org.TenantCollection {
			stale = append(stale, org)
		}
		overtaken.Add(1)
		org = after
	}
}

// cleanUpAbandoned sweeps after a write whose caller's context ended
// before the write was checked: if the org moved or went since org was
// read, what the write made under an old name is dropped.
func (m *Manager) cleanUpAbandoned(ctx context.Context, id OrgID, org *Org, stale []*Org, inserted string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	after, err := m.settledOrg(ctx, m.exactReads, id)
	switch {
	case errors.Is(err, ErrNotFound):
		m.sweep(ctx, id, append(stale, org), nil, inserted)
	case err != nil:
		m.log.WarnContext(ctx, "check an abandoned tenant write", "org_id", id, "err", err)
	case after.Version != org.Version || len(stale) > 0:
		m.sweep(ctx, id, append(stale, org), after, inserted)
	}
}

// settledOrg reads org id, waiting while a rename or delete of it runs. It
// returns ErrNotFound once the org is gone or was never acknowledged. An
// operation whose process died is settled here once its lease is over.
func (m *Manager) settledOrg(ctx context.Context, reads orgReader, id OrgID) (*Org, error) {
	wait := 2 * time.Millisecond
	renaming := false
	for {
		org, err := reads.OrgByID(ctx, id)
		if err != nil && renaming && outOfTime(ctx, err) {
			// The caller's time ran out while it waited for the rename.
			return nil, fmt.Errorf("organization %s: %w: %w", id, ErrRenaming, err)
		}
		if err != nil {
			return nil, fmt.Errorf("organization %s: %w", id, err)
		}
		renaming = org.State == OrgRenaming
		switch org.State {
		case OrgActive:
			return org, nil
		case OrgCreating:
			return nil, fmt.Errorf("organization %s: %w", id, ErrNotFound)
		}
		// What a cache says is in progress is read again from the
		// database, and dropped from the cache: the operation may have
		// ended since.
		m.dropCached(id)
		reads = m.orgs
		// If no operation holds the org's lock, the one that left this
		// state died or failed past the point it could undo: settle it.
		// A live rename holds the lock, and we wait for it; an org being
		// deleted is gone for tenant calls as for every reader.
		var rep RecoveryReport
		err = m.lockedRecoverOrg(ctx, id, &rep)
		if err == nil {
			continue
		}
		if org.State == OrgDeleting {
			return nil, fmt.Errorf("organization %s is being deleted: %w", id, ErrNotFound)
		}
		if !errors.Is(err, errBusy) {
			if renaming && outOfTime(ctx, err) {
				return nil, fmt.Errorf("organization %s: %w: %w", id, ErrRenaming, err)
			}
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("organization %s: %w: %w", id, ErrRenaming, context.Cause(ctx))
		case <-time.After(wait):
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// sweep cleans up after writes that a rename or delete overtook: once the
// collection moved away, an insert into its old name made a new collection
// there (MongoDB creates one on insert). What such a collection holds was
// never acknowledged: each writer inserted again into the current
// collection, or failed. It is dropped only while its name is reserved
// here, so that no organization can be using it. If another organization
// holds the name already, only the document inserted (when its id is
// known) is removed from its collection. Failures are logged: acknowledged
// data is safe, only a stray collection may be left.
func (m *Manager) sweep(ctx context.Context, id OrgID, stale []*Org, cur *Org, inserted string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	seen := map[string]bool{}
	for _, old := range stale {
		if seen[old.Identifier] || (cur != nil && old.Identifier == cur.Identifier) {
			continue
		}
		seen[old.Identifier] = true
		if err := m.sweepName(ctx, id, old.Identifier, inserted); err != nil {
			m.log.WarnContext(ctx, "sweep collection after an overtaken write", "org_id", id, "collection", old.TenantCollection, "err", err)
		}
	}
}

// sweepName drops the tenant collection of identifier if no organization
// holds the name, taking the name itself while it does. If another
// organization holds it, it removes the document inserted (when its id is
// known) from that organization's collection. A name held by an operation
// in progress (a rename releasing it, another sweep, an organization being
// created or renamed to it) is tried again until ctx ends.
func (m *Manager) sweepName(ctx context.Context, id OrgID, identifier, inserted string) error {
	collection := TenantCollection(identifier)
	holder := OrgID(newObjectID(m.now()))
	wait := 5 * time.Millisecond
	for {
		err := m.orgs.ReserveName(ctx, identifier, holder, m.now().UTC())
		if err == nil {
			break
		}
		if !errors.Is(err, ErrConflict) {
			return err
		}
		other, err := m.orgs.OrgByIdentifier(ctx, identifier)
		switch {
		case err == nil && other.ID == id:
			// Renamed back: the collection is this org's own again.
			return nil
		case err == nil && other.State == OrgActive:
			if inserted == anyDocument {
				m.log.ErrorContext(ctx, "an overtaken write may have landed in another organization's collection",
					"org_id", id, "collection", collection, "owner", other.ID)
				return nil
			}
			// The name was taken by another organization within one
			// write: take the document back out of its collection.
			m.log.ErrorContext(ctx, "overtaken write landed in another organization's collection; removing it",
				"org_id", id, "collection", collection, "owner", other.ID)
			return ignoreNotFound(m.documents.DeleteTenantDocument(ctx, collection, inserted))
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
	defer func() {
		if err := m.orgs.ReleaseName(ctx, identifier, holder); err != nil {
			// Recover releases it once the lease is over: no org has holder.
			m.log.WarnContext(ctx, "release swept name", "identifier", identifier, "err", err)
		}
	}()
	if _, err := m.collections.TenantCollectionOwner(ctx, collection); err == nil {
		// Stamped: an organization's collection, not a stray.
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	return m.collections.DropTenantCollection(ctx, collection)
}

// outOfTime reports whether err came from ctx's deadline: ctx ended, or
// the driver refused to start a command that could not finish before it.
func outOfTime(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded)
}
