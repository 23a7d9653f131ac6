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

// An organization's lock lives in the leases collection as two kinds of
// document, both read and written by _id alone (FerretDB over SQLite reads
// a whole collection for any other filter):
//
//   - the marker, _id "<org id>": the number of the latest lock, its
//     owner, its expiry, and whether it was released. Only the holder of
//     the latest lock writes it.
//   - the claim, _id "<org id>:<number>": inserted to take lock number n.
//     The server's unique _id alone decides between concurrent takers, as
//     no conditional update is atomic on FerretDB (it reads, then writes).
//
// To lock, a caller reads the marker (n, free or expired), inserts the
// claim n+1, and reads the marker again: if it still says n, no one else
// took a later lock meanwhile (a caller that read an old marker may insert
// a claim pruned long ago, and learns here that it lost), and the caller
// writes the marker n+1 and prunes claim n.

type leaseMarker struct {
	ID       string    `bson:"_id"`
	Seq      int64     `bson:"seq"`
	Owner    string    `bson:"owner"`
	Expires  time.Time `bson:"expires"`
	Released bool      `bson:"released"`
}

type leaseClaim struct {
	ID    string `bson:"_id"`
	Owner string `bson:"owner"`
	// Expires is the expiry its taker asked for: a claim whose marker was
	// never written (its process died between the two) is left over once
	// this has passed, and a later taker removes it.
	Expires time.Time `bson:"expires"`
}

func claimID(org string, seq int64) string { return fmt.Sprintf("%s:%d", org, seq) }

// marker reads org's lease marker; a missing one is lock number 0, free.
func (s *Store) marker(ctx context.Context, org string) (*leaseMarker, error) {
	var m leaseMarker
	err := s.leases.FindOne(ctx, bson.D{{Key: "_id", Value: org}}).Decode(&m)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return &leaseMarker{ID: org, Released: true}, nil
	}
	if err != nil {
		return nil, translate(err, "read lock of organization %s", org)
	}
	return &m, nil
}

// LockOrg implements tenancy.Store.
func (s *Store) LockOrg(ctx context.Context, org tenancy.OrgID, owner string, expires, now time.Time) error {
	id, err := objectID(string(org), "organization id")
	if err != nil {
		return err
	}
	key := id.Hex()
	last, err := s.marker(ctx, key)
	if err != nil {
		return err
	}
	if !last.Released && !last.Expires.Before(now) {
		return fmt.Errorf("mongostore: organization %s is locked by %s until %v: %w", org, last.Owner, last.Expires, tenancy.ErrConflict)
	}
	seq := last.Seq + 1
	claim := claimID(key, seq)
	if err := s.claim(ctx, claim, owner, expires, now); err != nil {
		return fmt.Errorf("mongostore: lock organization %s: %w", org, err)
	}
	// The claim is ours: finish, or take it back, whatever the caller's
	// context does, so that no claim is left without its marker.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	again, err := s.marker(ctx, key)
	if err == nil && again.Seq != last.Seq {
		err = fmt.Errorf("mongostore: organization %s was locked by %s meanwhile: %w", org, again.Owner, tenancy.ErrConflict)
	}
	if err == nil {
		_, err = s.leases.ReplaceOne(ctx, bson.D{{Key: "_id", Value: key}},
			leaseMarker{ID: key, Seq: seq, Owner: owner, Expires: expires}, options.Replace().SetUpsert(true))
		err = translate(err, "lock organization %s", org)
	}
	if err != nil {
		_, _ = s.leases.DeleteOne(ctx, bson.D{{Key: "_id", Value: claim}})
		return err
	}
	if seq > 1 {
		// The previous claim is history; the marker now guards its number.
		_, _ = s.leases.DeleteOne(ctx, bson.D{{Key: "_id", Value: claimID(key, seq-1)}})
	}
	return nil
}

// claim inserts the claim of a lock number. A claim there already is a
// concurrent taker's (ErrConflict), unless it expired without its marker
// being written: its process died between the two, and it is removed
// (only if it is still that claim) before one more try.
func (s *Store) claim(ctx context.Context, id, owner string, expires, now time.Time) error {
	for try := 0; ; try++ {
		_, err := s.leases.InsertOne(ctx, leaseClaim{ID: id, Owner: owner, Expires: expires})
		if err == nil {
			return nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return translate(err, "claim %s", id)
		}
		var held leaseClaim
		if err := s.leases.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&held); err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
			return translate(err, "read claim %s", id)
		}
		if try > 0 || held.Owner == "" || !held.Expires.Before(now) {
			return fmt.Errorf("taken meanwhile: %w", tenancy.ErrConflict)
		}
		// A filter on more than _id: FerretDB reads the collection for
		// it, but only on this path, after a crash.
		if _, err := s.leases.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "owner", Value: held.Owner}}); err != nil {
			return translate(err, "remove left-over claim %s", id)
		}
	}
}

// ownMarker filters org's marker while owner holds it: on MongoDB one
// atomic update checks the owner and number; on FerretDB, which would
// read every lock for that filter, the marker is read by _id and checked
// here, and the update goes by _id.
func (s *Store) ownMarker(ctx context.Context, key, owner string) (bson.D, error) {
	m, err := s.marker(ctx, key)
	if err != nil {
		return nil, err
	}
	if m.Owner != owner || m.Released {
		return nil, nil
	}
	if s.byIDOnly.Load() {
		return bson.D{{Key: "_id", Value: key}}, nil
	}
	return bson.D{{Key: "_id", Value: key}, {Key: "owner", Value: owner}, {Key: "seq", Value: m.Seq}, {Key: "released", Value: false}}, nil
}

// RenewLock implements tenancy.Store. Only the holder writes the marker,
// and a takeover needs the lock to have expired, which a holder renewing
// in time never lets happen.
func (s *Store) RenewLock(ctx context.Context, org tenancy.OrgID, owner string, expires time.Time) error {
	id, err := lookupID(string(org), "organization")
	if err != nil {
		return fmt.Errorf("mongostore: organization %s is not locked: %w", org, tenancy.ErrConflict)
	}
	filter, err := s.ownMarker(ctx, id.Hex(), owner)
	if err != nil {
		return err
	}
	notHeld := fmt.Errorf("mongostore: organization %s is not locked by %s: %w", org, owner, tenancy.ErrConflict)
	if filter == nil {
		return notHeld
	}
	res, err := s.leases.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "expires", Value: expires}}}})
	if err != nil {
		return translate(err, "renew lock of organization %s", org)
	}
	if res.MatchedCount == 0 {
		return notHeld
	}
	return nil
}

// UnlockOrg implements tenancy.Store.
func (s *Store) UnlockOrg(ctx context.Context, org tenancy.OrgID, owner string) error {
	id, err := lookupID(string(org), "organization")
	if err != nil {
		return nil // a malformed id holds no lock
	}
	filter, err := s.ownMarker(ctx, id.Hex(), owner)
	if err != nil || filter == nil {
		return err
	}
	_, err = s.leases.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "released", Value: true}}}})
	return translate(err, "unlock organization %s", org)
}

type operationDoc struct {
	OrgID   bson.ObjectID `bson:"_id"`
	Kind    string        `bson:"kind"`
	Names   []string      `bson:"names"`
	Started time.Time     `bson:"started"`
	// AdminID and Invitation are set by member operations.
	AdminID    string `bson:"admin_id,omitempty"`
	Invitation string `bson:"invitation,omitempty"`
	// Event is the operation's event, recorded once it took effect.
	Event *eventDoc `bson:"event,omitempty"`
}

// PutOperation implements tenancy.Store.
func (s *Store) PutOperation(ctx context.Context, op *tenancy.Operation) error {
	id, err := objectID(string(op.OrgID), "organization id")
	if err != nil {
		return err
	}
	d := operationDoc{OrgID: id, Kind: op.Kind, Names: op.Names, Started: op.Started, AdminID: string(op.AdminID), Invitation: op.Invitation}
	if op.Event != nil {
		d.Event = toEventDoc(op.Event, "")
	}
	_, err = s.journal.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, d, options.Replace().SetUpsert(true))
	return translate(err, "record operation on organization %s", op.OrgID)
}

// DeleteOperation implements tenancy.Store.
func (s *Store) DeleteOperation(ctx context.Context, org tenancy.OrgID) error {
	id, err := lookupID(string(org), "organization")
	if err != nil {
		return nil // a malformed id has no entry
	}
	_, err = s.journal.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	return translate(err, "clear operation on organization %s", org)
}

// Operations implements tenancy.Store.
func (s *Store) Operations(ctx context.Context) ([]*tenancy.Operation, error) {
	cur, err := s.journal.Find(ctx, bson.D{})
	if err != nil {
		return nil, translate(err, "read the journal")
	}
	var docs []operationDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err, "read the journal")
	}
	out := make([]*tenancy.Operation, len(docs))
	for i, d := range docs {
		out[i] = &tenancy.Operation{
			OrgID: tenancy.OrgID(d.OrgID.Hex()), Kind: d.Kind, Names: d.Names, Started: d.Started.UTC(),
			AdminID: tenancy.AdminID(d.AdminID), Invitation: d.Invitation,
		}
		if d.Event != nil {
			out[i].Event = d.Event.event()
		}
	}
	return out, nil
}

// DeleteExpired implements tenancy.Store. It filters on fields other than
// _id, so on FerretDB it reads both collections: it is meant for an
// occasional pass, not for every request.
func (s *Store) DeleteExpired(ctx context.Context, now, failuresBefore time.Time) (int64, error) {
	r, err := s.revoked.DeleteMany(ctx, bson.D{{Key: "expires", Value: bson.D{{Key: "$lt", Value: now}}}})
	if err != nil {
		return 0, translate(err, "delete expired revocations")
	}
	a, err := s.attempts.DeleteMany(ctx, bson.D{{Key: "last_failed_login", Value: bson.D{{Key: "$lt", Value: failuresBefore}}}})
	if err != nil {
		return r.DeletedCount, translate(err, "delete old login failures")
	}
	return r.DeletedCount + a.DeletedCount, nil
}
