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
//	org_members      one per membership, _id = "<org id>:<admin id>"
//	org_invitations  pending invitations; key "<org id>:<email>" is unique
//	tenant_*         one per organization, holding its data (in the
//	                 database given to WithTenantDatabase, if any)
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

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
	// MembersCollection holds the memberships of accounts in organizations.
	MembersCollection = "org_members"
	// InvitationsCollection holds the pending invitations.
	InvitationsCollection = "org_invitations"
	// EventsCollection holds each organization's events, _id
	// "<org id>:<number>".
	EventsCollection = "org_events"
	// EventHeadsCollection holds, by organization id, the number of its
	// last event (a hint: the events decide).
	EventHeadsCollection = "org_event_heads"
	// EventCursorsCollection holds, by organization id, the number of its
	// last delivered event.
	EventCursorsCollection = "org_event_cursors"
	// EventMarksCollection holds the ids of the organizations that have
	// events to deliver: empty when delivery is caught up.
	EventMarksCollection = "org_event_marks"
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
// round trip by default, and MaxCopyBatchSize the most WithCopyBatchSize
// accepts.
const (
	DefaultCopyBatchSize = 1000
	MaxCopyBatchSize     = 100_000
)

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

	// loginStripes serialize, on FerretDB, the updates of one address's
	// failed logins within this process (see lockLogins).
	loginStripes [64]sync.Mutex
	idOrder      IDOrder

	db       *mongo.Database
	tenants  *mongo.Database
	orgs     *mongo.Collection
	admins   *mongo.Collection
	names    *mongo.Collection
	leases   *mongo.Collection
	journal  *mongo.Collection
	emails   *mongo.Collection
	attempts *mongo.Collection
	revoked  *mongo.Collection

	members     *mongo.Collection
	invitations *mongo.Collection

	events       *mongo.Collection
	eventHeads   *mongo.Collection
	eventCursors *mongo.Collection
	eventMarks   *mongo.Collection
}

// Option configures a Store. New returns the error of the first option
// given a value it cannot use.
type Option func(*Store) error

// WithoutRenameCollection makes renames of organizations copy their
// documents in batches (then drop the old collection) instead of running
// renameCollection. Use it where renameCollection is refused or unwanted:
// deployments whose users lack the privilege on the admin database, or
// servers that refuse to rename the collection (the store also falls back
// to copying when a server answers that it cannot rename).
func WithoutRenameCollection() Option {
	return func(s *Store) error {
		s.noRename = true
		return nil
	}
}

// WithTenantDatabase keeps the tenant collections in db, a database of
// the same client, instead of the database given to New, which keeps the
// organization records, accounts and journal: the "master database"
// layout, one database for what every request reads and one for the
// tenants' data. Renames stay within db. Use it on FerretDB over SQLite,
// such as the reference server's embedded database, where every find
// costs in proportion to the number of collections in its database:
// with it, reads of organizations and accounts do not slow down as
// organizations are added. MoveTenantCollections moves the tenant
// collections of a database written without it.
func WithTenantDatabase(db *mongo.Database) Option {
	return func(s *Store) error {
		if db == nil {
			return errors.New("mongostore: tenant database must not be nil")
		}
		s.tenants = db
		return nil
	}
}

// IDOrder lists a tenant collection's document ids in order without
// reading its documents, for a server that cannot serve an _id range from
// an index: FerretDB over SQLite reads and decodes the whole collection
// for one. The reference server's embedded database has one.
type IDOrder interface {
	// IDsAfter returns, in order, up to n ids of the documents of the
	// collection coll of the database db whose _id is an ObjectID greater
	// than after, leaving out the collection's metadata document.
	IDsAfter(ctx context.Context, db, coll string, after bson.ObjectID, n int) ([]bson.ObjectID, error)
}

// WithIDOrder makes a page of tenant documents take its ids from x and
// then read each document by _id, so that a page costs its own documents
// whatever the size of the collection. Without it, on FerretDB the store
// streams every id of the collection to choose a page's, and on MongoDB
// the _id index serves the page.
func WithIDOrder(x IDOrder) Option {
	return func(s *Store) error {
		if x == nil {
			return errors.New("mongostore: IDOrder must not be nil")
		}
		s.idOrder = x
		return nil
	}
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
	return func(s *Store) error {
		s.statsCount = true
		return nil
	}
}

// WithCopyBatchSize sets how many documents a copying rename reads and
// inserts per round trip (default DefaultCopyBatchSize). Memory use grows
// with the batch, not with the collection.
func WithCopyBatchSize(n int) Option {
	return func(s *Store) error {
		if n < 1 || n > MaxCopyBatchSize {
			return fmt.Errorf("mongostore: copy batch size %d outside 1..%d", n, MaxCopyBatchSize)
		}
		s.batchSize = int32(n)
		return nil
	}
}

// New returns a Store over db, or the error of the first invalid option.
// It does no I/O: call EnsureIndexes once before serving.
func New(db *mongo.Database, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, errors.New("mongostore: database must not be nil")
	}
	s := &Store{
		batchSize: DefaultCopyBatchSize,
		db:        db,
		tenants:   db,
		orgs:      db.Collection(OrgsCollection),
		admins:    db.Collection(AdminsCollection),
		names:     db.Collection(NamesCollection),
		leases:    db.Collection(LeasesCollection),
		journal:   db.Collection(OperationsCollection),
		emails:    db.Collection(EmailsCollection),
		attempts:  db.Collection(AttemptsCollection),
		revoked:   db.Collection(RevokedCollection),

		members:     db.Collection(MembersCollection),
		invitations: db.Collection(InvitationsCollection),

		events:       db.Collection(EventsCollection),
		eventHeads:   db.Collection(EventHeadsCollection),
		eventCursors: db.Collection(EventCursorsCollection),
		eventMarks:   db.Collection(EventMarksCollection),
	}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, err
		}
	}
	if s.tenants.Client() != db.Client() {
		// Renames run renameCollection, and moves between the two
		// databases, on one connection pool.
		return nil, errors.New("mongostore: the tenant database must belong to the client of the store's database")
	}
	return s, nil
}

// Collection returns the tenant collection name, in the store's tenant
// database, for applications that query a tenant collection themselves
// inside tenancy.Manager.InTenant.
func (s *Store) Collection(name string) *mongo.Collection {
	return s.tenants.Collection(name)
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
	if err := s.memberIndexes(ctx); err != nil {
		return err
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

// memberIndexes creates the indexes of memberships and invitations: the
// unique key of invitations, and those the listings use on MongoDB. One
// index per command: FerretDB drops the connection when a command that
// creates several finds them there already.
func (s *Store) memberIndexes(ctx context.Context) error {
	for _, ix := range []struct {
		coll  *mongo.Collection
		model mongo.IndexModel
	}{
		{s.invitations, mongo.IndexModel{Keys: bson.D{{Key: "key", Value: 1}}, Options: options.Index().SetUnique(true).SetName("key_unique")}},
		{s.invitations, mongo.IndexModel{Keys: bson.D{{Key: "org_id", Value: 1}}, Options: options.Index().SetName("org_id")}},
		{s.invitations, mongo.IndexModel{Keys: bson.D{{Key: "expires_at", Value: 1}}, Options: options.Index().SetName("expires_at")}},
		{s.members, mongo.IndexModel{Keys: bson.D{{Key: "org_id", Value: 1}, {Key: "admin_id", Value: 1}}, Options: options.Index().SetName("org_admin")}},
		{s.events, mongo.IndexModel{Keys: bson.D{{Key: "eid", Value: 1}}, Options: options.Index().SetUnique(true).SetName("eid_unique")}},
	} {
		if _, err := ix.coll.Indexes().CreateOne(ctx, ix.model); err != nil {
			return fmt.Errorf("mongostore: create index on %s: %w", ix.coll.Name(), err)
		}
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.db.Client().Ping(ctx, nil)
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
	case unreachable(err) || busy(err):
		kind = tenancy.ErrUnavailable
	default:
		return fmt.Errorf("mongostore: %s: %w", what, err)
	}
	return fmt.Errorf("mongostore: %s: %w: %w", what, kind, err)
}

// busy reports an error of FerretDB over SQLite that found its database
// file locked by another writer past its busy timeout: the request may
// succeed if tried again. FerretDB gives it no code of its own (it is an
// InternalError), so its text is all there is to go by.
func busy(err error) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && (strings.Contains(se.Error(), "SQLITE_BUSY") || strings.Contains(se.Error(), "database is locked"))
}

// unreachable reports an error that says no server answered: a network
// failure, or no server found within the client's server selection
// timeout (mongo-driver exports no type for that one outside its x
// packages).
func unreachable(err error) bool {
	var sel topology.ServerSelectionError
	return mongo.IsNetworkError(err) || errors.As(err, &sel) || errors.Is(err, mongo.ErrClientDisconnected)
}
