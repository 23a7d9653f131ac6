package mongostore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenancy/tenancy"
)

type adminDoc struct {
	ID              bson.ObjectID `bson:"_id"`
	Email           string        `bson:"email"`
	PasswordHash    string        `bson:"password_hash"`
	OrgID           bson.ObjectID `bson:"organization_id"`
	CreatedAt       time.Time     `bson:"created_at"`
	FailedLogins    int           `bson:"failed_logins,omitempty"`
	LastFailedLogin time.Time     `bson:"last_failed_login,omitempty"`
	TokenGeneration int64         `bson:"token_generation,omitempty"`
	// Orgs lists the organizations the admin may be a member of, in the
	// order joined: every one it is a member of, and perhaps some it
	// left (see AdminMemberships). It is written only under the
	// account's lock, which the Manager holds for membership changes.
	Orgs []string `bson:"orgs,omitempty"`
}

// emailDoc points an email at its admin, so that FerretDB finds an admin
// by email with reads by _id. The unique index on admin_accounts.email
// decides who holds an email; a pointer whose admin is gone (deleted
// admins keep theirs) reads as no admin, and a new admin of the email
// overwrites it.
type emailDoc struct {
	Email   string        `bson:"_id"`
	AdminID bson.ObjectID `bson:"admin_id"`
}

// CreateAdmin implements tenancy.Store.
func (s *Store) CreateAdmin(ctx context.Context, admin *tenancy.Admin) error {
	id, err := objectID(string(admin.ID), "admin id")
	if err != nil {
		return err
	}
	org, err := objectID(string(admin.OrgID), "organization id")
	if err != nil {
		return err
	}
	email := strings.ToLower(admin.Email)
	_, err = s.admins.InsertOne(ctx, adminDoc{
		ID: id, Email: email, PasswordHash: string(admin.PasswordHash),
		OrgID: org, CreatedAt: admin.CreatedAt, Orgs: []string{string(admin.OrgID)},
	})
	if err != nil {
		return translate(err, "create admin %s", admin.ID)
	}
	// The unique email index decided; the pointer only serves lookups.
	return s.pointEmail(ctx, email, id)
}

// AdminByEmail implements tenancy.Store. On MongoDB it is one read by the
// unique email index; on FerretDB, which would read every admin for it,
// two reads by _id: the email's pointer, then the admin.
func (s *Store) AdminByEmail(ctx context.Context, email string) (*tenancy.Admin, error) {
	email = strings.ToLower(email)
	if !s.byIDOnly.Load() {
		return s.findAdmin(ctx, bson.D{{Key: "email", Value: email}}, email)
	}
	var p emailDoc
	if err := s.emails.FindOne(ctx, bson.D{{Key: "_id", Value: email}}).Decode(&p); err != nil {
		return nil, translate(err, "admin %q", email)
	}
	a, err := s.findAdmin(ctx, bson.D{{Key: "_id", Value: p.AdminID}}, email)
	if err != nil {
		return nil, err
	}
	if a.Email != email {
		return nil, fmt.Errorf("mongostore: admin %q: %w", email, tenancy.ErrNotFound)
	}
	return a, nil
}

// AdminByID implements tenancy.Store.
func (s *Store) AdminByID(ctx context.Context, id tenancy.AdminID) (*tenancy.Admin, error) {
	oid, err := lookupID(string(id), "admin")
	if err != nil {
		return nil, err
	}
	return s.findAdmin(ctx, bson.D{{Key: "_id", Value: oid}}, string(id))
}

func (s *Store) findAdmin(ctx context.Context, filter bson.D, what string) (*tenancy.Admin, error) {
	var d adminDoc
	if err := s.admins.FindOne(ctx, filter).Decode(&d); err != nil {
		return nil, translate(err, "admin %q", what)
	}
	a := &tenancy.Admin{
		ID: tenancy.AdminID(d.ID.Hex()), Email: d.Email, PasswordHash: []byte(d.PasswordHash),
		OrgID: tenancy.OrgID(d.OrgID.Hex()), CreatedAt: d.CreatedAt.UTC(),
		FailedLogins: d.FailedLogins, TokenGeneration: d.TokenGeneration,
	}
	if !d.LastFailedLogin.IsZero() {
		a.LastFailedLogin = d.LastFailedLogin.UTC()
	}
	return a, nil
}

// SetAdminPassword implements tenancy.Store.
func (s *Store) SetAdminPassword(ctx context.Context, id tenancy.AdminID, hash []byte) (int64, error) {
	oid, err := lookupID(string(id), "admin")
	if err != nil {
		return 0, err
	}
	var d adminDoc
	err = s.admins.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: oid}}, bson.D{
		{Key: "$set", Value: bson.D{{Key: "password_hash", Value: string(hash)}}},
		{Key: "$inc", Value: bson.D{{Key: "token_generation", Value: int64(1)}}},
	}, options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
	if err != nil {
		return 0, translate(err, "set password of admin %s", id)
	}
	return d.TokenGeneration, nil
}

// SetAdminHome implements tenancy.Store.
func (s *Store) SetAdminHome(ctx context.Context, id tenancy.AdminID, org tenancy.OrgID) error {
	oid, err := lookupID(string(id), "admin")
	if err != nil {
		return err
	}
	home, err := objectID(string(org), "organization id")
	if err != nil {
		return err
	}
	res, err := s.admins.UpdateOne(ctx, bson.D{{Key: "_id", Value: oid}}, bson.D{{Key: "$set", Value: bson.D{{Key: "organization_id", Value: home}}}})
	if err != nil {
		return translate(err, "set home organization of admin %s", id)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("mongostore: admin %s: %w", id, tenancy.ErrNotFound)
	}
	return nil
}

// DeleteAdmin implements tenancy.Store.
func (s *Store) DeleteAdmin(ctx context.Context, id tenancy.AdminID) error {
	oid, err := lookupID(string(id), "admin")
	if err != nil {
		return err
	}
	// The email's pointer stays: one whose admin is gone reads as no
	// admin, and deleting it could race a new admin of the same email.
	res, err := s.admins.DeleteOne(ctx, bson.D{{Key: "_id", Value: oid}})
	if err != nil {
		return translate(err, "delete admin %s", id)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("mongostore: delete admin %s: %w", id, tenancy.ErrNotFound)
	}
	return nil
}

func (s *Store) pointEmail(ctx context.Context, email string, id bson.ObjectID) error {
	_, err := s.emails.ReplaceOne(ctx, bson.D{{Key: "_id", Value: email}}, emailDoc{Email: email, AdminID: id}, options.Replace().SetUpsert(true))
	return translate(err, "index email of admin %s", id.Hex())
}

// pointEmails writes the email pointers of admins created before pointers
// existed, when there are fewer pointers than admins.
func (s *Store) pointEmails(ctx context.Context) error {
	admins, err := s.admins.EstimatedDocumentCount(ctx)
	if err != nil {
		return fmt.Errorf("mongostore: count admins: %w", err)
	}
	pointers, err := s.emails.EstimatedDocumentCount(ctx)
	if err != nil {
		return fmt.Errorf("mongostore: count email pointers: %w", err)
	}
	if pointers >= admins {
		return nil
	}
	cur, err := s.admins.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "email", Value: 1}}))
	if err != nil {
		return fmt.Errorf("mongostore: list admins: %w", err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var d adminDoc
		if err := cur.Decode(&d); err != nil {
			return fmt.Errorf("mongostore: list admins: %w", err)
		}
		if err := s.pointEmail(ctx, d.Email, d.ID); err != nil {
			return err
		}
	}
	return cur.Err()
}

// adminByEmailFilter selects the admin with the lower-cased email: by the
// email on MongoDB (its unique index), by _id through the email's pointer
// on FerretDB. It returns nil if FerretDB has no pointer: no such admin.
func (s *Store) adminByEmailFilter(ctx context.Context, email string) (bson.D, error) {
	if !s.byIDOnly.Load() {
		return bson.D{{Key: "email", Value: email}}, nil
	}
	var p emailDoc
	err := s.emails.FindOne(ctx, bson.D{{Key: "_id", Value: email}}).Decode(&p)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, translate(err, "admin %q", email)
	}
	return bson.D{{Key: "_id", Value: p.AdminID}}, nil
}
