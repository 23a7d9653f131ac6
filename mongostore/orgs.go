package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenancy/tenancy"
)

type orgDoc struct {
	ID               bson.ObjectID `bson:"_id"`
	Name             string        `bson:"name"`
	Identifier       string        `bson:"identifier"`
	TenantCollection string        `bson:"tenant_collection"`
	AdminID          bson.ObjectID `bson:"admin_id"`
	AdminEmail       string        `bson:"admin_email"`
	State            string        `bson:"state"`
	Pending          *pendingDoc   `bson:"pending,omitempty"`
	CreatedAt        time.Time     `bson:"created_at"`
	ModifiedAt       time.Time     `bson:"modified_at"`
	Version          int64         `bson:"version"`
}

type pendingDoc struct {
	Name             string `bson:"name"`
	Identifier       string `bson:"identifier"`
	TenantCollection string `bson:"tenant_collection"`
	Copy             bool   `bson:"copy,omitempty"`
}

type nameDoc struct {
	Identifier string        `bson:"_id"`
	OrgID      bson.ObjectID `bson:"org_id"`
	ReservedAt time.Time     `bson:"reserved_at"`
}

func toOrgDoc(o *tenancy.Org) (*orgDoc, error) {
	id, err := objectID(string(o.ID), "organization id")
	if err != nil {
		return nil, err
	}
	admin, err := objectID(string(o.AdminID), "admin id")
	if err != nil {
		return nil, err
	}
	d := &orgDoc{
		ID: id, Name: o.Name, Identifier: o.Identifier, TenantCollection: o.TenantCollection,
		AdminID: admin, AdminEmail: o.AdminEmail, State: string(o.State),
		CreatedAt: o.CreatedAt, ModifiedAt: o.ModifiedAt, Version: o.Version,
	}
	if o.PendingName != "" || o.PendingIdentifier != "" || o.PendingCollection != "" || o.PendingCopy {
		d.Pending = &pendingDoc{Name: o.PendingName, Identifier: o.PendingIdentifier, TenantCollection: o.PendingCollection, Copy: o.PendingCopy}
	}
	return d, nil
}

func (d *orgDoc) org() *tenancy.Org {
	o := &tenancy.Org{
		ID: tenancy.OrgID(d.ID.Hex()), Name: d.Name, Identifier: d.Identifier, TenantCollection: d.TenantCollection,
		AdminID: tenancy.AdminID(d.AdminID.Hex()), AdminEmail: d.AdminEmail, State: tenancy.OrgState(d.State),
		CreatedAt: d.CreatedAt.UTC(), ModifiedAt: d.ModifiedAt.UTC(), Version: d.Version,
	}
	if d.Pending != nil {
		o.PendingName, o.PendingIdentifier, o.PendingCollection = d.Pending.Name, d.Pending.Identifier, d.Pending.TenantCollection
		o.PendingCopy = d.Pending.Copy
	}
	return o
}

// ReserveName implements tenancy.Store.
func (s *Store) ReserveName(ctx context.Context, identifier string, org tenancy.OrgID, at time.Time) error {
	id, err := objectID(string(org), "organization id")
	if err != nil {
		return err
	}
	_, err = s.names.InsertOne(ctx, nameDoc{Identifier: identifier, OrgID: id, ReservedAt: at})
	if !mongo.IsDuplicateKeyError(err) {
		return translate(err, "reserve name %q", identifier)
	}
	var held nameDoc
	if err := s.names.FindOne(ctx, bson.D{{Key: "_id", Value: identifier}}).Decode(&held); err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			// Released between the insert and the read: the caller may retry.
			return fmt.Errorf("mongostore: name %q changed hands while reserving: %w", identifier, tenancy.ErrConflict)
		}
		return translate(err, "read reservation of %q", identifier)
	}
	if held.OrgID != id {
		return fmt.Errorf("mongostore: name %q is held by organization %s: %w", identifier, held.OrgID.Hex(), tenancy.ErrConflict)
	}
	return nil
}

// ReleaseName implements tenancy.Store.
func (s *Store) ReleaseName(ctx context.Context, identifier string, org tenancy.OrgID) error {
	id, err := lookupID(string(org), "organization id")
	if err != nil {
		return nil // a malformed id holds no name
	}
	filter := bson.D{{Key: "_id", Value: identifier}, {Key: "org_id", Value: id}}
	if s.byIDOnly.Load() {
		// Only the holder releases its name, so reading by _id first
		// leaves no gap another holder could use.
		var held nameDoc
		err := s.names.FindOne(ctx, bson.D{{Key: "_id", Value: identifier}}).Decode(&held)
		if errors.Is(err, mongo.ErrNoDocuments) || (err == nil && held.OrgID != id) {
			return nil
		}
		if err != nil {
			return translate(err, "release name %q", identifier)
		}
		filter = bson.D{{Key: "_id", Value: identifier}}
	}
	_, err = s.names.DeleteOne(ctx, filter)
	return translate(err, "release name %q", identifier)
}

// Reservations implements tenancy.Store.
func (s *Store) Reservations(ctx context.Context, before time.Time) ([]tenancy.Reservation, error) {
	cur, err := s.names.Find(ctx, bson.D{{Key: "reserved_at", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return nil, translate(err, "list reservations")
	}
	var docs []nameDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err, "list reservations")
	}
	out := make([]tenancy.Reservation, len(docs))
	for i, d := range docs {
		out[i] = tenancy.Reservation{Identifier: d.Identifier, OrgID: tenancy.OrgID(d.OrgID.Hex()), ReservedAt: d.ReservedAt.UTC()}
	}
	return out, nil
}

// CreateOrg implements tenancy.Store.
func (s *Store) CreateOrg(ctx context.Context, org *tenancy.Org) error {
	d, err := toOrgDoc(org)
	if err != nil {
		return err
	}
	_, err = s.orgs.InsertOne(ctx, d)
	return translate(err, "create organization %s", org.ID)
}

// OrgByID implements tenancy.Store.
func (s *Store) OrgByID(ctx context.Context, id tenancy.OrgID) (*tenancy.Org, error) {
	oid, err := lookupID(string(id), "organization")
	if err != nil {
		return nil, err
	}
	return s.findOrg(ctx, bson.D{{Key: "_id", Value: oid}}, string(id))
}

// OrgByIdentifier implements tenancy.Store. On MongoDB it is one read by
// the unique identifier index. On FerretDB, which would read every
// organization for it, it is two reads by _id: the reservation of the
// name, which names the organization holding it, then that organization,
// whose identifier must be the name (a rename in progress holds its new
// name before the record has it).
func (s *Store) OrgByIdentifier(ctx context.Context, identifier string) (*tenancy.Org, error) {
	if !s.byIDOnly.Load() {
		return s.findOrg(ctx, bson.D{{Key: "identifier", Value: identifier}}, identifier)
	}
	var held nameDoc
	if err := s.names.FindOne(ctx, bson.D{{Key: "_id", Value: identifier}}).Decode(&held); err != nil {
		return nil, translate(err, "organization %q", identifier)
	}
	org, err := s.findOrg(ctx, bson.D{{Key: "_id", Value: held.OrgID}}, identifier)
	if err != nil {
		return nil, err
	}
	if org.Identifier != identifier {
		return nil, fmt.Errorf("mongostore: organization %q: %w", identifier, tenancy.ErrNotFound)
	}
	return org, nil
}

func (s *Store) findOrg(ctx context.Context, filter bson.D, what string) (*tenancy.Org, error) {
	var d orgDoc
	if err := s.orgs.FindOne(ctx, filter).Decode(&d); err != nil {
		return nil, translate(err, "organization %q", what)
	}
	return d.org(), nil
}

// UpdateOrg implements tenancy.Store.
func (s *Store) UpdateOrg(ctx context.Context, org *tenancy.Org) error {
	d, err := toOrgDoc(org)
	if err != nil {
		return err
	}
	d.Version++
	filter := bson.D{{Key: "_id", Value: d.ID}, {Key: "version", Value: org.Version}}
	if s.byIDOnly.Load() {
		// The server would read then write anyway; reading by _id first
		// keeps the check off a scan of every organization.
		var cur struct {
			Version int64 `bson:"version"`
		}
		err := s.orgs.FindOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, options.FindOne().SetProjection(bson.D{{Key: "version", Value: 1}})).Decode(&cur)
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			return fmt.Errorf("mongostore: update organization %s: %w", org.ID, tenancy.ErrNotFound)
		case err != nil:
			return translate(err, "update organization %s", org.ID)
		case cur.Version != org.Version:
			return fmt.Errorf("mongostore: organization %s changed since version %d: %w", org.ID, org.Version, tenancy.ErrConflict)
		}
		filter = bson.D{{Key: "_id", Value: d.ID}}
	}
	res, err := s.orgs.ReplaceOne(ctx, filter, d)
	if err != nil {
		return translate(err, "update organization %s", org.ID)
	}
	if res.MatchedCount == 0 {
		// Tell a stale version from a missing org; this costs a round
		// trip only on the failure path.
		n, err := s.orgs.CountDocuments(ctx, bson.D{{Key: "_id", Value: d.ID}}, options.Count().SetLimit(1))
		if err != nil {
			return translate(err, "update organization %s", org.ID)
		}
		if n == 0 {
			return fmt.Errorf("mongostore: update organization %s: %w", org.ID, tenancy.ErrNotFound)
		}
		return fmt.Errorf("mongostore: organization %s changed since version %d: %w", org.ID, org.Version, tenancy.ErrConflict)
	}
	org.Version = d.Version
	return nil
}

// DeleteOrg implements tenancy.Store.
func (s *Store) DeleteOrg(ctx context.Context, id tenancy.OrgID) error {
	oid, err := lookupID(string(id), "organization")
	if err != nil {
		return err
	}
	res, err := s.orgs.DeleteOne(ctx, bson.D{{Key: "_id", Value: oid}})
	if err != nil {
		return translate(err, "delete organization %s", id)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("mongostore: delete organization %s: %w", id, tenancy.ErrNotFound)
	}
	return nil
}

// UnfinishedOrgs implements tenancy.Store.
func (s *Store) UnfinishedOrgs(ctx context.Context, before time.Time) ([]*tenancy.Org, error) {
	cur, err := s.orgs.Find(ctx, bson.D{
		{Key: "state", Value: bson.D{{Key: "$ne", Value: string(tenancy.OrgActive)}}},
		{Key: "modified_at", Value: bson.D{{Key: "$lt", Value: before}}},
	})
	if err != nil {
		return nil, translate(err, "list unfinished organizations")
	}
	var docs []orgDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err, "list unfinished organizations")
	}
	out := make([]*tenancy.Org, len(docs))
	for i := range docs {
		out[i] = docs[i].org()
	}
	return out, nil
}
