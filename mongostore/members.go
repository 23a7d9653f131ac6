package mongostore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenancy/tenancy"
)

// memberDoc is a membership, _id "<org id>:<admin id>": the insert of
// that _id claims it, and the token check reads it by _id.
type memberDoc struct {
	ID       string    `bson:"_id"`
	OrgID    string    `bson:"org_id"`
	AdminID  string    `bson:"admin_id"`
	Email    string    `bson:"email"`
	Role     string    `bson:"role"`
	JoinedAt time.Time `bson:"joined_at"`
}

func memberID(org tenancy.OrgID, admin tenancy.AdminID) string {
	return string(org) + ":" + string(admin)
}

func (d *memberDoc) membership() *tenancy.Membership {
	return &tenancy.Membership{
		OrgID: tenancy.OrgID(d.OrgID), AdminID: tenancy.AdminID(d.AdminID), Email: d.Email,
		Role: tenancy.Role(d.Role), JoinedAt: d.JoinedAt.UTC(),
	}
}

// AddMembership implements tenancy.Store.
func (s *Store) AddMembership(ctx context.Context, mb *tenancy.Membership) error {
	if _, err := objectID(string(mb.OrgID), "organization id"); err != nil {
		return err
	}
	admin, err := objectID(string(mb.AdminID), "admin id")
	if err != nil {
		return err
	}
	// The account's list first, so that it never lacks a membership.
	_, err = s.admins.UpdateOne(ctx, bson.D{{Key: "_id", Value: admin}},
		bson.D{{Key: "$addToSet", Value: bson.D{{Key: "orgs", Value: string(mb.OrgID)}}}})
	if err != nil {
		return translate(err, "list organization %s on admin %s", mb.OrgID, mb.AdminID)
	}
	_, err = s.members.InsertOne(ctx, memberDoc{
		ID: memberID(mb.OrgID, mb.AdminID), OrgID: string(mb.OrgID), AdminID: string(mb.AdminID),
		Email: strings.ToLower(mb.Email), Role: string(mb.Role), JoinedAt: mb.JoinedAt,
	})
	return translate(err, "add %s to organization %s", mb.AdminID, mb.OrgID)
}

// Membership implements tenancy.Store.
func (s *Store) Membership(ctx context.Context, org tenancy.OrgID, admin tenancy.AdminID) (*tenancy.Membership, error) {
	var d memberDoc
	if err := s.members.FindOne(ctx, bson.D{{Key: "_id", Value: memberID(org, admin)}}).Decode(&d); err != nil {
		return nil, translate(err, "membership of %s in %s", admin, org)
	}
	return d.membership(), nil
}

// SetMemberRole implements tenancy.Store.
func (s *Store) SetMemberRole(ctx context.Context, org tenancy.OrgID, admin tenancy.AdminID, role tenancy.Role) error {
	res, err := s.members.UpdateOne(ctx, bson.D{{Key: "_id", Value: memberID(org, admin)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "role", Value: string(role)}}}})
	if err != nil {
		return translate(err, "set role of %s in %s", admin, org)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("mongostore: membership of %s in %s: %w", admin, org, tenancy.ErrNotFound)
	}
	return nil
}

// DeleteMembership implements tenancy.Store.
func (s *Store) DeleteMembership(ctx context.Context, org tenancy.OrgID, admin tenancy.AdminID) error {
	res, err := s.members.DeleteOne(ctx, bson.D{{Key: "_id", Value: memberID(org, admin)}})
	if err != nil {
		return translate(err, "remove %s from %s", admin, org)
	}
	// The account's list after, so that it never lacks a membership.
	if id, err := bson.ObjectIDFromHex(string(admin)); err == nil {
		_, err = s.admins.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
			bson.D{{Key: "$pull", Value: bson.D{{Key: "orgs", Value: string(org)}}}})
		if err != nil {
			return translate(err, "unlist organization %s on admin %s", org, admin)
		}
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("mongostore: membership of %s in %s: %w", admin, org, tenancy.ErrNotFound)
	}
	return nil
}

// OrgMembers implements tenancy.Store. On MongoDB the index on org_id and
// admin_id serves it; FerretDB reads the whole collection for it.
func (s *Store) OrgMembers(ctx context.Context, org tenancy.OrgID, after tenancy.AdminID, limit int) ([]*tenancy.Membership, error) {
	if limit <= 0 {
		return nil, nil
	}
	filter := bson.D{{Key: "org_id", Value: string(org)}, {Key: "admin_id", Value: bson.D{{Key: "$gt", Value: string(after)}}}}
	return s.findMembers(ctx, filter, options.Find().SetSort(bson.D{{Key: "admin_id", Value: 1}}).SetLimit(int64(limit)), "members of %s", org)
}

// AdminMemberships implements tenancy.Store. It reads by _id only: the
// account's list of organizations, then the membership in each, so that
// on FerretDB it does not read every membership.
func (s *Store) AdminMemberships(ctx context.Context, admin tenancy.AdminID) ([]*tenancy.Membership, error) {
	oid, err := lookupID(string(admin), "admin")
	if err != nil {
		return nil, nil
	}
	var d adminDoc
	err = s.admins.FindOne(ctx, bson.D{{Key: "_id", Value: oid}}, options.FindOne().SetProjection(bson.D{{Key: "orgs", Value: 1}})).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, translate(err, "memberships of %s", admin)
	}
	out := make([]*tenancy.Membership, 0, len(d.Orgs))
	for _, org := range d.Orgs {
		mb, err := s.Membership(ctx, tenancy.OrgID(org), admin)
		if errors.Is(err, tenancy.ErrNotFound) {
			continue // left, or a join that did not complete
		}
		if err != nil {
			return nil, err
		}
		out = append(out, mb)
	}
	slices.SortStableFunc(out, func(a, b *tenancy.Membership) int {
		return cmp.Or(a.JoinedAt.Compare(b.JoinedAt), strings.Compare(string(a.OrgID), string(b.OrgID)))
	})
	return out, nil
}

func (s *Store) findMembers(ctx context.Context, filter bson.D, opts *options.FindOptionsBuilder, format string, arg any) ([]*tenancy.Membership, error) {
	cur, err := s.members.Find(ctx, filter, opts)
	if err != nil {
		return nil, translate(err, format, arg)
	}
	var docs []memberDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err, format, arg)
	}
	out := make([]*tenancy.Membership, len(docs))
	for i := range docs {
		out[i] = docs[i].membership()
	}
	return out, nil
}
