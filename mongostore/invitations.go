package mongostore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenancy/tenancy"
)

// invitationDoc is a pending invitation. Its key "<org id>:<email>" has a
// unique index: the insert decides that an organization invites an email
// once at a time.
type invitationDoc struct {
	ID        string    `bson:"_id"`
	Key       string    `bson:"key"`
	OrgID     string    `bson:"org_id"`
	Email     string    `bson:"email"`
	Role      string    `bson:"role"`
	TokenHash []byte    `bson:"token_hash"`
	InvitedBy string    `bson:"invited_by"`
	CreatedAt time.Time `bson:"created_at"`
	ExpiresAt time.Time `bson:"expires_at"`
}

func (d *invitationDoc) invitation() *tenancy.Invitation {
	return &tenancy.Invitation{
		ID: d.ID, OrgID: tenancy.OrgID(d.OrgID), Email: d.Email, Role: tenancy.Role(d.Role),
		TokenHash: d.TokenHash, InvitedBy: tenancy.AdminID(d.InvitedBy),
		CreatedAt: d.CreatedAt.UTC(), ExpiresAt: d.ExpiresAt.UTC(),
	}
}

// CreateInvitation implements tenancy.Store.
func (s *Store) CreateInvitation(ctx context.Context, inv *tenancy.Invitation) error {
	if _, err := objectID(inv.ID, "invitation id"); err != nil {
		return err
	}
	if _, err := objectID(string(inv.OrgID), "organization id"); err != nil {
		return err
	}
	email := strings.ToLower(inv.Email)
	_, err := s.invitations.InsertOne(ctx, invitationDoc{
		ID: inv.ID, Key: string(inv.OrgID) + ":" + email, OrgID: string(inv.OrgID), Email: email,
		Role: string(inv.Role), TokenHash: inv.TokenHash, InvitedBy: string(inv.InvitedBy),
		CreatedAt: inv.CreatedAt, ExpiresAt: inv.ExpiresAt,
	})
	return translate(err, "invite %s to %s", email, inv.OrgID)
}

// Invitation implements tenancy.Store.
func (s *Store) Invitation(ctx context.Context, id string) (*tenancy.Invitation, error) {
	var d invitationDoc
	if err := s.invitations.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
		return nil, translate(err, "invitation %s", id)
	}
	return d.invitation(), nil
}

// OrgInvitations implements tenancy.Store. On MongoDB the index on org_id
// serves it; FerretDB reads the whole collection for it.
func (s *Store) OrgInvitations(ctx context.Context, org tenancy.OrgID) ([]*tenancy.Invitation, error) {
	cur, err := s.invitations.Find(ctx, bson.D{{Key: "org_id", Value: string(org)}},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, translate(err, "invitations of %s", org)
	}
	var docs []invitationDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err, "invitations of %s", org)
	}
	out := make([]*tenancy.Invitation, len(docs))
	for i := range docs {
		out[i] = docs[i].invitation()
	}
	return out, nil
}

// DeleteInvitation implements tenancy.Store.
func (s *Store) DeleteInvitation(ctx context.Context, id string) error {
	res, err := s.invitations.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return translate(err, "delete invitation %s", id)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("mongostore: invitation %s: %w", id, tenancy.ErrNotFound)
	}
	return nil
}

// DeleteExpiredInvitations implements tenancy.Store. On MongoDB the index
// on expires_at serves it; FerretDB reads every invitation for it, which
// is why the Manager runs it in its hourly full pass only.
func (s *Store) DeleteExpiredInvitations(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.invitations.DeleteMany(ctx, bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return 0, translate(err, "delete expired invitations")
	}
	return res.DeletedCount, nil
}
