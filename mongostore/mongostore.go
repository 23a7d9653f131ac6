// Package mongostore is a tenancy.Store over MongoDB, through
// go.mongodb.org/mongo-driver/v2. It works on any server the driver
// reaches (standalone, replica set, sharded, Atlas) and on FerretDB: it
// uses no multi-document transactions, no collations and no partial
// indexes, and it decides every uniqueness question by an insert.
//
// Collections, in the database given to New:
//
//	org_registry     one document per organization; identifier is unique
//	admin_accounts   one document per admin; email (lower-cased) is unique
//	org_names        one document per reserved identifier, _id = identifier
//	org_leases       the lock of each organization under an operation
//	org_operations   the journal of operations in flight
//	admin_emails     each admin's email, _id = email, pointing at the admin
//	login_attempts   failed logins of addresses without an admin
//	revoked_tokens   tokens revoked by logout, until they expire
//	tenant_*         one per organization, holding its data
package mongostore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/tenancy/tenancy"
)

var _ tenancy.Store = (*Store)(nil)

// Collection names.
const (
	OrgsCollection   = "org_registry"
	AdminsCollection = "admin_accounts"
	NamesCollection  = "org_names"
	// LeasesCollection holds the lock of each organization that an
	// operation has changed: a marker by organization id, and the claim
	// of the latest lock (see LockOrg).
	LeasesCollection = "org_leases"
	// OperationsCollection is the journal of operations in flight: empty
	// when nothing is pending.
	OperationsCollection = "org_operations"
	// EmailsCollection points each admin email at its admin, for lookups
	// by _id on FerretDB.
	EmailsCollection = "admin_emails"
	// AttemptsCollection counts failed logins of addresses without an admin.
	AttemptsCollection = "login_attempts"
	// RevokedCollection lists tokens revoked by logout until they expire.
	RevokedCollection = "revoked_tokens"
)

// Server error codes the store translates.
const (
	codeBadValue           = 2
	codeIllegalOperation   = 20
	codeNamespaceNotFound  = 26
	codeNamespaceExists    = 48
	codeCommandNotFound    = 59
	codeCommandUnsupported = 115
	codeNotImplemented     = 238
)

// DefaultCopyBatchSize is how many documents a copying rename moves per
// round trip by default.
const DefaultCopyBatchSize = 1000

// Store is a tenancy.Store over one MongoDB database. It is safe for
// concurrent use.
type Store struct {
	noRename   bool
	batchSize  int32
	statsCount bool
	// byIDOnly is set by EnsureIndexes on FerretDB, which reads a whole
	// collection for any filter but exactly one _id: writes that would
	// filter on more then read by _id and check in Go.
	byIDOnly atomic.Bool

	db       *mongo.Database
	orgs     *mongo.Collection
	admins   *mongo.Collection
	names    *mongo.Collection
	leases   *mongo.Collection
	journal  *mongo.Collection
	emails   *mongo.Collection
	attempts *mongo.Collection
	revoked  *mongo.Collection
}

// Option configures a Store.
type Option func(*Store)

// WithoutRenameCollection makes renames of organizations copy their
// documents in batches (then drop the old collection) instead of running
// renameCollection. Use it where renameCollection is refused or unwanted:
// deployments whose users lack the privilege on the admin database, or
// servers that refuse to rename the collection (the store also falls back
// to copying when a server answers that it cannot rename).
func WithoutRenameCollection() Option {
	return func(s *Store) { s.noRename = true }
}

// WithCollStatsCount makes the store count a tenant collection's documents
// (documents_migrated of a rename) with the $collStats count instead of
// countDocuments. Use it on FerretDB over SQLite, such as the reference
// server's embedded database: it answers that count exactly from its table
// pages, while its countDocuments reads every document into memory. Do
// not use it on MongoDB, whose collection statistics can drift after an
// unclean shutdown, or on FerretDB over PostgreSQL, where it is an
// estimate.
func WithCollStatsCount() Option {
	return func(s *Store) { s.statsCount = true }
}

// WithCopyBatchSize sets how many documents a copying rename reads and
// inserts per round trip (default DefaultCopyBatchSize). Memory use grows
// with the batch, not with the collection.
func WithCopyBatchSize(n int) Option {
	return func(s *Store) {
		if n > 0 {
			s.batchSize = int32(min(n, 100_000))
		}
	}
}

// New returns a Store over db. It does no I/O: call EnsureIndexes once
// before serving.
func New(db *mongo.Database, opts ...Option) *Store {
	s := &Store{
		batchSize: DefaultCopyBatchSize,
		db:        db,
		orgs:      db.Collection(OrgsCollection),
		admins:    db.Collection(AdminsCollection),
		names:     db.Collection(NamesCollection),
		leases:    db.Collection(LeasesCollection),
		journal:   db.Collection(OperationsCollection),
		emails:    db.Collection(EmailsCollection),
		attempts:  db.Collection(AttemptsCollection),
		revoked:   db.Collection(RevokedCollection),
	}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// Collection returns the collection name of the store's database, for
// applications that query a tenant collection themselves inside
// tenancy.Manager.InTenant.
func (s *Store) Collection(name string) *mongo.Collection {
	return s.db.Collection(name)
}

// EnsureIndexes creates the unique indexes the store relies on, if they do
// not exist yet. It is safe to call on every start and from several
// processes at once.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	var info bson.M
	if err := s.db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return fmt.Errorf("mongostore: buildInfo: %w", err)
	}
	_, ferret := info["ferretdbVersion"]
	s.byIDOnly.Store(ferret)
	if err := s.pointEmails(ctx); err != nil {
		return err
	}
	if _, err := s.orgs.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "identifier", Value: 1}},
		Options: options.Index().SetUnique(true).SetName("identifier_unique"),
	}); err != nil {
		return fmt.Errorf("mongostore: create index on %s.identifier: %w", OrgsCollection, err)
	}
	if _, err := s.admins.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "email", Value: 1}},
		Options: options.Index().SetUnique(true).SetName("email_unique"),
	}); err != nil {
		return fmt.Errorf("mongostore: create index on %s.email: %w", AdminsCollection, err)
	}
	_, err := s.revoked.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "expires", Value: 1}},
		Options: options.Index().SetExpireAfterSeconds(0).SetName("expires_ttl"),
	})
	var se mongo.ServerError
	if errors.As(err, &se) && se.HasErrorCode(codeNotImplemented) {
		// FerretDB has no TTL indexes: DeleteExpired removes expired
		// records (tenancy.Manager.RunRecovery calls it hourly).
		_, err = s.revoked.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys: bson.D{{Key: "expires", Value: 1}}, Options: options.Index().SetName("expires"),
		})
	}
	if err != nil {
		return fmt.Errorf("mongostore: create index on %s: %w", RevokedCollection, err)
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.db.Client().Ping(ctx, nil)
}

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

// attemptDoc counts the failed logins of an address without an admin.
type attemptDoc struct {
	Email           string    `bson:"_id"`
	FailedLogins    int       `bson:"failed_logins"`
	LastFailedLogin time.Time `bson:"last_failed_login"`
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

// objectID parses an id for writing; a malformed one is invalid input.
func objectID(hex, what string) (bson.ObjectID, error) {
	id, err := bson.ObjectIDFromHex(hex)
	if err != nil {
		return id, fmt.Errorf("mongostore: %s %q is not an ObjectID: %w", what, hex, tenancy.ErrInvalid)
	}
	return id, nil
}

// lookupID parses an id for reading; a malformed one names no record.
func lookupID(hex, what string) (bson.ObjectID, error) {
	id, err := bson.ObjectIDFromHex(hex)
	if err != nil {
		return id, fmt.Errorf("mongostore: %s %q: %w", what, hex, tenancy.ErrNotFound)
	}
	return id, nil
}

// translate maps driver errors to tenancy's sentinels, keeping the cause.
func translate(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf(format, args...)
	var kind error
	var se mongo.ServerError
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		kind = tenancy.ErrNotFound
	case mongo.IsDuplicateKeyError(err):
		kind = tenancy.ErrConflict
	case errors.As(err, &se) && se.HasErrorCode(codeNamespaceNotFound):
		kind = tenancy.ErrNotFound
	case errors.As(err, &se) && se.HasErrorCode(codeNamespaceExists):
		kind = tenancy.ErrConflict
	case errors.As(err, &se) && se.HasErrorCode(codeBadValue):
		// A value the server cannot store, such as FerretDB's nested arrays.
		kind = tenancy.ErrInvalid
	case unreachable(err):
		kind = tenancy.ErrUnavailable
	default:
		return fmt.Errorf("mongostore: %s: %w", what, err)
	}
	return fmt.Errorf("mongostore: %s: %w: %w", what, kind, err)
}

// unreachable reports an error that says no server answered: a network
// failure, or no server found within the client's server selection
// timeout (mongo-driver exports no type for that one outside its x
// packages).
func unreachable(err error) bool {
	var sel topology.ServerSelectionError
	return mongo.IsNetworkError(err) || errors.As(err, &sel) || errors.Is(err, mongo.ErrClientDisconnected)
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

// RecordLoginFailure implements tenancy.Store. Each count is one update;
// on FerretDB, whose updates read and then write, failures of one address
// at the same instant may count once.
func (s *Store) RecordLoginFailure(ctx context.Context, email string, known bool, at time.Time) error {
	email = strings.ToLower(email)
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

// CreateTenantCollection implements tenancy.Store. It lists the
// collection first: since MongoDB 7.0 (and on mongos) create answers OK for
// a collection that exists, which would hand an existing collection and its
// data to a new organization.
func (s *Store) CreateTenantCollection(ctx context.Context, name string, owner tenancy.OrgID, createdAt time.Time) error {
	oid, err := objectID(string(owner), "organization id")
	if err != nil {
		return err
	}
	exists, err := s.TenantCollectionExists(ctx, name)
	if err != nil {
		return err
	}
	if exists {
		return fmt.Errorf("mongostore: create collection %s: exists: %w", name, tenancy.ErrConflict)
	}
	if err := s.db.CreateCollection(ctx, name); err != nil {
		return translate(err, "create collection %s", name)
	}
	_, err = s.db.Collection(name).InsertOne(ctx, bson.D{{Key: "metadata", Value: bson.D{
		{Key: "created_at", Value: createdAt},
		{Key: "schema_version", Value: "1.0"},
		{Key: "org_id", Value: oid},
	}}})
	return translate(err, "write metadata of %s", name)
}

// TenantCollectionOwner implements tenancy.Store.
func (s *Store) TenantCollectionOwner(ctx context.Context, name string) (tenancy.OrgID, error) {
	var doc struct {
		Metadata struct {
			OrgID *bson.ObjectID `bson:"org_id"`
		} `bson:"metadata"`
	}
	err := s.db.Collection(name).FindOne(ctx, bson.D{{Key: "metadata.org_id", Value: bson.D{{Key: "$exists", Value: true}}}}).Decode(&doc)
	if err != nil {
		return "", translate(err, "owner of collection %s", name)
	}
	if doc.Metadata.OrgID == nil {
		return "", fmt.Errorf("mongostore: owner of collection %s: %w", name, tenancy.ErrNotFound)
	}
	return tenancy.OrgID(doc.Metadata.OrgID.Hex()), nil
}

// TenantCollectionExists implements tenancy.Store. On FerretDB, whose
// listCollections builds and filters a document for every collection (5 ms
// at 10,000 organizations), it lists the collection's indexes instead: a
// collection always has its _id index, and a missing one has none (the
// server's NamespaceNotFound, which the driver turns into no indexes).
func (s *Store) TenantCollectionExists(ctx context.Context, name string) (bool, error) {
	if s.byIDOnly.Load() {
		cur, err := s.db.Collection(name).Indexes().List(ctx)
		if err != nil {
			err = translate(err, "list indexes of collection %s", name)
			if errors.Is(err, tenancy.ErrNotFound) {
				return false, nil
			}
			return false, err
		}
		defer cur.Close(context.WithoutCancel(ctx))
		// The driver answers NamespaceNotFound with no indexes.
		found := cur.Next(ctx)
		return found, translate(cur.Err(), "list indexes of collection %s", name)
	}
	names, err := s.db.ListCollectionNames(ctx, bson.D{{Key: "name", Value: name}})
	if err != nil {
		return false, translate(err, "list collection %s", name)
	}
	return len(names) > 0, nil
}

// CountTenantDocuments implements tenancy.Store with countDocuments, an
// exact count, or with the $collStats count under WithCollStatsCount.
func (s *Store) CountTenantDocuments(ctx context.Context, name string) (int64, error) {
	if !s.statsCount {
		n, err := s.db.Collection(name).CountDocuments(ctx, bson.D{})
		return n, translate(err, "count documents of %s", name)
	}
	cur, err := s.db.Collection(name).Aggregate(ctx, bson.A{bson.D{{Key: "$collStats", Value: bson.D{{Key: "count", Value: bson.D{}}}}}})
	if err != nil {
		err = translate(err, "count documents of %s", name)
		if errors.Is(err, tenancy.ErrNotFound) {
			return 0, nil
		}
		return 0, err
	}
	defer cur.Close(context.WithoutCancel(ctx))
	var stats struct {
		Count int64 `bson:"count"`
	}
	if cur.Next(ctx) {
		if err := cur.Decode(&stats); err != nil {
			return 0, fmt.Errorf("mongostore: count documents of %s: %w", name, err)
		}
	}
	return stats.Count, translate(cur.Err(), "count documents of %s", name)
}

// RenameTenantCollection implements tenancy.Store. It uses renameCollection,
// which moves the collection's metadata, not its documents. A server that
// refuses to rename (or a store made WithoutRenameCollection) gives an
// error matching errors.ErrUnsupported.
func (s *Store) RenameTenantCollection(ctx context.Context, from, to string) error {
	if s.noRename {
		return fmt.Errorf("mongostore: rename collection %s: disabled by WithoutRenameCollection: %w", from, errors.ErrUnsupported)
	}
	db := s.db.Name()
	err := s.db.Client().Database("admin").RunCommand(ctx, bson.D{
		{Key: "renameCollection", Value: db + "." + from},
		{Key: "to", Value: db + "." + to},
	}).Err()
	var se mongo.ServerError
	if errors.As(err, &se) && (se.HasErrorCode(codeIllegalOperation) || se.HasErrorCode(codeCommandNotFound) || se.HasErrorCode(codeCommandUnsupported)) {
		return fmt.Errorf("mongostore: rename collection %s to %s: %w: %w", from, to, errors.ErrUnsupported, err)
	}
	return translate(err, "rename collection %s to %s", from, to)
}

// DropTenantCollection implements tenancy.Store.
func (s *Store) DropTenantCollection(ctx context.Context, name string) error {
	return translate(s.db.Collection(name).Drop(ctx), "drop collection %s", name)
}

// InsertTenantDocument adds doc to the collection name. It lets tests and
// tools put data in a tenant collection.
func (s *Store) InsertTenantDocument(ctx context.Context, name string, doc map[string]any) error {
	_, err := s.db.Collection(name).InsertOne(ctx, doc)
	return translate(err, "insert into %s", name)
}

// CopyTenantDocuments implements tenancy.Store. It first creates to with
// the indexes of from (renameCollection keeps them too), then reads from
// in natural order through one cursor and inserts unordered batches of
// raw documents, so memory holds one batch, whatever the collection's size.
func (s *Store) CopyTenantDocuments(ctx context.Context, from, to string, progress func(int64)) (int64, error) {
	if err := s.db.CreateCollection(ctx, to); err != nil {
		var se mongo.ServerError
		if !errors.As(err, &se) || !se.HasErrorCode(codeNamespaceExists) {
			return 0, translate(err, "create collection %s", to)
		}
	}
	if err := s.copyIndexes(ctx, from, to); err != nil {
		return 0, err
	}
	cur, err := s.db.Collection(from).Find(ctx, bson.D{}, options.Find().SetBatchSize(s.batchSize))
	if err != nil {
		return 0, translate(err, "read collection %s", from)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	dst := s.db.Collection(to)
	batch := make([]any, 0, s.batchSize)
	var read int64
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := dst.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false))
		if err != nil && !onlyDuplicates(err) {
			return translate(err, "insert into %s", to)
		}
		read += int64(len(batch))
		clear(batch)
		batch = batch[:0]
		if progress != nil {
			progress(read)
		}
		return nil
	}
	for cur.Next(ctx) {
		// The cursor reuses its buffer: keep a copy of each document.
		batch = append(batch, bson.Raw(append([]byte(nil), cur.Current...)))
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return read, err
			}
		}
	}
	if err := cur.Err(); err != nil {
		return read, translate(err, "read collection %s", from)
	}
	err = flush()
	return read, err
}

// copyIndexes creates on to the indexes of from other than _id's. An
// index that exists already (an interrupted copy made it) is left alone.
func (s *Store) copyIndexes(ctx context.Context, from, to string) error {
	cur, err := s.db.Collection(from).Indexes().List(ctx)
	if err != nil {
		err = translate(err, "list indexes of %s", from)
		if errors.Is(err, tenancy.ErrNotFound) {
			return nil
		}
		return err
	}
	var specs []bson.D
	if err := cur.All(ctx, &specs); err != nil {
		return translate(err, "list indexes of %s", from)
	}
	var indexes bson.A
	for _, spec := range specs {
		keep := make(bson.D, 0, len(spec))
		name := ""
		for _, e := range spec {
			switch e.Key {
			case "v", "ns":
				continue
			case "name":
				name, _ = e.Value.(string)
			}
			keep = append(keep, e)
		}
		if name != "_id_" {
			indexes = append(indexes, keep)
		}
	}
	if len(indexes) == 0 {
		return nil
	}
	err = s.db.RunCommand(ctx, bson.D{{Key: "createIndexes", Value: to}, {Key: "indexes", Value: indexes}}).Err()
	return translate(err, "create indexes of %s on %s", from, to)
}

// onlyDuplicates reports whether every write error of err is a duplicate
// key: documents an earlier, interrupted copy already inserted.
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 {
			return false
		}
	}
	return true
}

// notMetadata excludes a collection's metadata document.
var notMetadata = bson.E{Key: "metadata.org_id", Value: bson.D{{Key: "$exists", Value: false}}}

// AddTenantDocument implements tenancy.Store.
func (s *Store) AddTenantDocument(ctx context.Context, collection string, doc *tenancy.Document) error {
	id, err := objectID(doc.ID, "document id")
	if err != nil {
		return err
	}
	d := make(bson.D, 0, len(doc.Data)+1)
	d = append(d, bson.E{Key: "_id", Value: id})
	for k, v := range doc.Data {
		d = append(d, bson.E{Key: k, Value: v})
	}
	_, err = s.db.Collection(collection).InsertOne(ctx, d)
	return translate(err, "insert document %s into %s", doc.ID, collection)
}

// TenantDocument implements tenancy.Store. On FerretDB the filter is the
// _id alone, the only one it finds by index, and the metadata document is
// told apart here.
func (s *Store) TenantDocument(ctx context.Context, collection, id string) (*tenancy.Document, error) {
	oid, err := lookupID(id, "document id")
	if err != nil {
		return nil, err
	}
	filter := bson.D{{Key: "_id", Value: oid}, notMetadata}
	if s.byIDOnly.Load() {
		filter = bson.D{{Key: "_id", Value: oid}}
	}
	raw, err := s.db.Collection(collection).FindOne(ctx, filter).Raw()
	if err != nil {
		return nil, translate(err, "document %s in %s", id, collection)
	}
	if isMetadata(raw) {
		return nil, fmt.Errorf("mongostore: document %s in %s: %w", id, collection, tenancy.ErrNotFound)
	}
	return toDocument(raw)
}

// isMetadata reports whether raw is a tenant collection's metadata
// document.
func isMetadata(raw bson.Raw) bool {
	_, err := raw.LookupErr("metadata", "org_id")
	return err == nil
}

// TenantDocuments implements tenancy.Store. On MongoDB it is one find
// served by the _id index. FerretDB neither filters by an _id range nor
// sorts by index: it would read the whole collection, sort it in memory
// and send a page. So there the page is chosen from a stream of the ids
// alone, keeping the smallest limit of them, and then read by _id: the
// memory a page takes is bounded by its limit, whatever the collection's
// size, though the time still grows with it (FerretDB decodes every
// document to filter it).
func (s *Store) TenantDocuments(ctx context.Context, collection, after string, limit int) ([]*tenancy.Document, error) {
	var from bson.ObjectID
	if after != "" {
		var err error
		if from, err = objectID(after, "document id"); err != nil {
			return nil, err
		}
	}
	if s.byIDOnly.Load() {
		return s.pageByScan(ctx, collection, from, limit)
	}
	cur, err := s.db.Collection(collection).Find(ctx,
		bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: from}}}, notMetadata},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, translate(err, "list documents of %s", collection)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	docs := make([]*tenancy.Document, 0, min(limit, 100))
	for cur.Next(ctx) {
		doc, err := toDocument(cur.Current)
		if err != nil {
			return nil, err
		}
		docs = append(docs, doc)
	}
	return docs, translate(cur.Err(), "list documents of %s", collection)
}

// scanBatch is how many ids a batch of the id stream holds.
const scanBatch = 1000

// pageByScan returns the page of limit documents after from by streaming
// the collection's ids (unsorted, so the server holds one batch) and then
// reading each chosen document by _id. A document deleted between the two
// steps leaves a gap, and the page is chosen again after the last one
// read.
func (s *Store) pageByScan(ctx context.Context, collection string, from bson.ObjectID, limit int) ([]*tenancy.Document, error) {
	coll := s.db.Collection(collection)
	docs := make([]*tenancy.Document, 0, min(limit, 100))
	for len(docs) < limit {
		want := limit - len(docs)
		ids, err := s.smallestIDs(ctx, coll, from, want)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			break
		}
		for _, id := range ids {
			raw, err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
			if errors.Is(err, mongo.ErrNoDocuments) {
				continue // deleted since the scan
			}
			if err != nil {
				return nil, translate(err, "list documents of %s", collection)
			}
			doc, err := toDocument(raw)
			if err != nil {
				return nil, err
			}
			docs = append(docs, doc)
		}
		from = ids[len(ids)-1]
		if len(ids) < want {
			break // the scan found no more
		}
	}
	return docs, nil
}

// smallestIDs returns, in order, the n smallest ids of documents after
// from in coll (not its metadata document), reading every id once.
func (s *Store) smallestIDs(ctx context.Context, coll *mongo.Collection, from bson.ObjectID, n int) ([]bson.ObjectID, error) {
	cur, err := coll.Find(ctx,
		bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: from}}}, notMetadata},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(scanBatch))
	if err != nil {
		return nil, translate(err, "list documents of %s", coll.Name())
	}
	defer cur.Close(context.WithoutCancel(ctx))
	// ids is sorted and holds at most n: a stream in insertion order
	// mostly appends or is refused at the last element.
	ids := make([]bson.ObjectID, 0, min(n, 100))
	for cur.Next(ctx) {
		id, ok := cur.Current.Lookup("_id").ObjectIDOK()
		if !ok {
			continue // not a document of the Tenant API
		}
		if len(ids) == n && bytes.Compare(id[:], ids[n-1][:]) >= 0 {
			continue
		}
		i, _ := slices.BinarySearchFunc(ids, id, func(a, b bson.ObjectID) int { return bytes.Compare(a[:], b[:]) })
		if len(ids) == n {
			ids = ids[:n-1]
		}
		ids = slices.Insert(ids, i, id)
	}
	return ids, translate(cur.Err(), "list documents of %s", coll.Name())
}

// DeleteTenantDocument implements tenancy.Store. On FerretDB the document
// is read by _id first, to keep the metadata document from being deleted
// by a filter FerretDB would find by a scan.
func (s *Store) DeleteTenantDocument(ctx context.Context, collection, id string) error {
	oid, err := lookupID(id, "document id")
	if err != nil {
		return err
	}
	filter := bson.D{{Key: "_id", Value: oid}, notMetadata}
	if s.byIDOnly.Load() {
		raw, err := s.db.Collection(collection).FindOne(ctx, bson.D{{Key: "_id", Value: oid}},
			options.FindOne().SetProjection(bson.D{{Key: "metadata.org_id", Value: 1}})).Raw()
		if err != nil {
			return translate(err, "delete document %s of %s", id, collection)
		}
		if isMetadata(raw) {
			return fmt.Errorf("mongostore: document %s of %s: %w", id, collection, tenancy.ErrNotFound)
		}
		filter = bson.D{{Key: "_id", Value: oid}}
	}
	res, err := s.db.Collection(collection).DeleteOne(ctx, filter)
	if err != nil {
		return translate(err, "delete document %s of %s", id, collection)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("mongostore: document %s of %s: %w", id, collection, tenancy.ErrNotFound)
	}
	return nil
}

// toDocument converts a stored document to a tenancy.Document.
func toDocument(raw bson.Raw) (*tenancy.Document, error) {
	elems, err := raw.Elements()
	if err != nil {
		return nil, fmt.Errorf("mongostore: read document: %w", err)
	}
	doc := &tenancy.Document{Data: make(map[string]any, len(elems))}
	for _, e := range elems {
		if e.Key() == "_id" {
			if oid, ok := e.Value().ObjectIDOK(); ok {
				doc.ID = oid.Hex()
			}
			continue
		}
		doc.Data[e.Key()] = fromRaw(e.Value())
	}
	return doc, nil
}

// fromRaw converts a BSON value to the Go types of tenancy.Document.Data.
// Types JSON has no counterpart for keep a faithful text form.
func fromRaw(v bson.RawValue) any {
	switch v.Type {
	case bson.TypeNull, bson.TypeUndefined:
		return nil
	case bson.TypeBoolean:
		return v.Boolean()
	case bson.TypeString:
		return v.StringValue()
	case bson.TypeInt32:
		return int64(v.Int32())
	case bson.TypeInt64:
		return v.Int64()
	case bson.TypeDouble:
		return v.Double()
	case bson.TypeDateTime:
		return v.Time().UTC()
	case bson.TypeObjectID:
		return v.ObjectID().Hex()
	case bson.TypeEmbeddedDocument:
		elems, _ := v.Document().Elements()
		m := make(map[string]any, len(elems))
		for _, e := range elems {
			m[e.Key()] = fromRaw(e.Value())
		}
		return m
	case bson.TypeArray:
		vals, _ := v.Array().Values()
		a := make([]any, len(vals))
		for i, e := range vals {
			a[i] = fromRaw(e)
		}
		return a
	}
	return v.String()
}
