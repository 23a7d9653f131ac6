package mongostore

import (
	"context"
	"errors"
	"hash/fnv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// attemptDoc counts the failed logins of an address without an admin.
type attemptDoc struct {
	Email           string    `bson:"_id"`
	FailedLogins    int       `bson:"failed_logins"`
	LastFailedLogin time.Time `bson:"last_failed_login"`
}

// lockLogins serializes the updates of the failed logins of email within
// this process on FerretDB, and returns the unlock. FerretDB applies an
// update as a read and then a write, so two parallel conditional updates
// can both match, and two $inc can count once; MongoDB decides each
// update alone and needs no lock. The embedded database has one serving
// process, which makes its counts and claims exact; processes sharing a
// FerretDB database may still both claim one back-off window.
func (s *Store) lockLogins(email string) func() {
	if !s.byIDOnly.Load() {
		return func() {}
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(email))
	mu := &s.loginStripes[h.Sum32()%uint32(len(s.loginStripes))]
	mu.Lock()
	return mu.Unlock
}

// RecordLoginFailure implements tenancy.Store with one update (see
// lockLogins for FerretDB).
func (s *Store) RecordLoginFailure(ctx context.Context, email string, known bool, at time.Time) error {
	email = strings.ToLower(email)
	defer s.lockLogins(email)()
	update := failureUpdate(at)
	if known {
		filter, err := s.adminByEmailFilter(ctx, email)
		if err != nil {
			return err
		}
		if filter != nil {
			res, err := s.admins.UpdateOne(ctx, filter, update)
			if err != nil {
				return translate(err, "count failed login")
			}
			if res.MatchedCount > 0 {
				return nil
			}
		}
		// Deleted meanwhile: count on the address.
	}
	_, err := s.attempts.UpdateOne(ctx, bson.D{{Key: "_id", Value: email}}, update, options.UpdateOne().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		// A concurrent first failure inserted it: count on it.
		_, err = s.attempts.UpdateOne(ctx, bson.D{{Key: "_id", Value: email}}, update)
	}
	return translate(err, "count failed login")
}

func failureUpdate(at time.Time) bson.D {
	return bson.D{
		{Key: "$inc", Value: bson.D{{Key: "failed_logins", Value: 1}}},
		{Key: "$set", Value: bson.D{{Key: "last_failed_login", Value: at}}},
	}
}

// ClaimLoginAttempt implements tenancy.Store with one conditional update.
func (s *Store) ClaimLoginAttempt(ctx context.Context, email string, known bool, last, at time.Time) (bool, error) {
	email = strings.ToLower(email)
	defer s.lockLogins(email)()
	var lastFilter any = last
	if last.IsZero() {
		lastFilter = bson.D{{Key: "$exists", Value: false}}
	}
	// One conditional update, so that the server decides between parallel
	// claims. On FerretDB a filter on more than _id reads the whole
	// collection: that cost falls only on tries at the back-off threshold.
	coll, filter := s.attempts, bson.D{{Key: "_id", Value: email}, {Key: "last_failed_login", Value: lastFilter}}
	if known {
		coll, filter = s.admins, bson.D{{Key: "email", Value: email}, {Key: "last_failed_login", Value: lastFilter}}
	}
	res, err := coll.UpdateOne(ctx, filter, failureUpdate(at))
	if err != nil {
		return false, translate(err, "claim login attempt")
	}
	return res.MatchedCount > 0, nil
}

// ResetLoginFailures implements tenancy.Store.
func (s *Store) ResetLoginFailures(ctx context.Context, email string) error {
	email = strings.ToLower(email)
	filter, err := s.adminByEmailFilter(ctx, email)
	if err != nil {
		return err
	}
	if filter != nil {
		_, err := s.admins.UpdateOne(ctx, filter, bson.D{
			{Key: "$unset", Value: bson.D{{Key: "failed_logins", Value: ""}, {Key: "last_failed_login", Value: ""}}},
		})
		if err != nil {
			return translate(err, "reset failed logins")
		}
	}
	_, err = s.attempts.DeleteOne(ctx, bson.D{{Key: "_id", Value: email}})
	return translate(err, "reset failed logins")
}

// LoginFailures implements tenancy.Store.
func (s *Store) LoginFailures(ctx context.Context, email string) (int, time.Time, error) {
	var d attemptDoc
	err := s.attempts.FindOne(ctx, bson.D{{Key: "_id", Value: strings.ToLower(email)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, translate(err, "failed logins")
	}
	return d.FailedLogins, d.LastFailedLogin.UTC(), nil
}

// RevokeToken implements tenancy.Store: an insert, so that a revocation
// is never lost to a concurrent one. A TTL index (EnsureIndexes) removes
// the record once the token has expired, where the server supports it.
func (s *Store) RevokeToken(ctx context.Context, jti string, expires time.Time) error {
	_, err := s.revoked.InsertOne(ctx, bson.D{{Key: "_id", Value: jti}, {Key: "expires", Value: expires}})
	if mongo.IsDuplicateKeyError(err) {
		return nil
	}
	return translate(err, "revoke token")
}

// TokenRevoked implements tenancy.Store.
func (s *Store) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	err := s.revoked.FindOne(ctx, bson.D{{Key: "_id", Value: jti}}, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, translate(err, "look up revoked token")
}
