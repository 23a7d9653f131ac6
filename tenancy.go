package tenancy

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Sentinel errors. Every error returned by a Manager or a Store that callers
// are expected to act on matches one of these under errors.Is; the wrapped
// message says what happened, the sentinel says what kind of thing it was.
var (
	// ErrNotFound reports that an organization, admin or collection does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict reports that a name, email or record is already taken or
	// was changed by someone else since it was read.
	ErrConflict = errors.New("conflict")
	// ErrInvalid reports input that breaks a rule; see ValidationError.
	ErrInvalid = errors.New("invalid input")
	// ErrUnauthenticated reports wrong credentials or a token that does not verify.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden reports an authenticated admin acting on an organization
	// that is not theirs.
	ErrForbidden = errors.New("forbidden")
	// ErrThrottled reports an account with too many failed logins in a
	// row: it may try again after the back-off (see RetryError).
	ErrThrottled = errors.New("too many failed attempts")
	// ErrOverloaded reports that the password-hashing capacity is taken
	// and the request waited for it too long (see RetryError).
	ErrOverloaded = errors.New("overloaded")
	// ErrLeaseLost reports an operation stopped because its process could
	// not renew the lease on its organization's lock in time: from then
	// on another process may settle the operation, so this one does
	// nothing more, not even its rollback.
	ErrLeaseLost = errors.New("operation lease lost")
	// ErrUnavailable reports a store that could not reach its database:
	// the request may be tried again once the database is back.
	ErrUnavailable = errors.New("database unavailable")
)

// RetryError reports a request refused for now: Kind is ErrThrottled or
// ErrOverloaded, After how long to wait before trying again. It matches
// Kind under errors.Is.
type RetryError struct {
	Kind  error
	After time.Duration
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("%v: retry after %v", e.Kind, e.After.Round(time.Second))
}

// Is reports whether target is e.Kind.
func (e *RetryError) Is(target error) bool { return target == e.Kind }

// FieldError is one broken rule of one input field. Field is the name the
// field has on the wire ("organization_name", "email", "password").
type FieldError struct {
	Field   string
	Message string
}

// ValidationError lists every invalid field of one request. It matches
// ErrInvalid under errors.Is.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid input: ")
	for i, f := range e.Fields {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Field)
		b.WriteString(" ")
		b.WriteString(f.Message)
	}
	return b.String()
}

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// add records a broken rule; it is a no-op for an empty message.
func (e *ValidationError) add(field, message string) {
	if message != "" {
		e.Fields = append(e.Fields, FieldError{Field: field, Message: message})
	}
}

// err returns e as an error, or nil when no rule was broken.
func (e *ValidationError) err() error {
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// ConflictError reports that a unique value is taken. Field is the input
// field holding it ("organization_name" or "email"). It matches ErrConflict
// under errors.Is and unwraps to the store's error.
type ConflictError struct {
	Field   string
	Message string
	Err     error
}

func (e *ConflictError) Error() string { return e.Field + " " + e.Message }

// Is reports whether target is ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Unwrap returns the store's error.
func (e *ConflictError) Unwrap() error { return e.Err }

// Store persists organizations, admin accounts, name reservations and tenant
// collections. It holds no policy: validation, ids, hashing, clocks and the
// order of the steps of an operation belong to the Manager. Implementations
// must be safe for concurrent use, must not retain or share the values passed
// to or returned from them, and must return an error matching ctx.Err() when
// ctx is already done, without writing anything.
//
// Errors: a missing record gives ErrNotFound, a taken unique value
// (id, identifier, email) or a stale version gives ErrConflict; other errors
// are failures of the backend and keep their cause.
type Store interface {
	// ReserveName claims identifier for org, stamped with at. It is the
	// only way uniqueness of identifiers is decided, so it must be an
	// atomic insert. Reserving a name the same org already holds succeeds;
	// a name held by another org gives ErrConflict.
	ReserveName(ctx context.Context, identifier string, org OrgID, at time.Time) error
	// Reservations returns the names reserved before before, for recovery
	// to find names no organization uses.
	Reservations(ctx context.Context, before time.Time) ([]Reservation, error)
	// ReleaseName gives up org's claim on identifier. Releasing a name that
	// is not held, or is held by another org, changes nothing and succeeds.
	ReleaseName(ctx context.Context, identifier string, org OrgID) error

	// CreateOrg inserts org. It gives ErrConflict if the id or the
	// identifier is already in use.
	CreateOrg(ctx context.Context, org *Org) error
	// OrgByID returns the org with id, or ErrNotFound.
	OrgByID(ctx context.Context, id OrgID) (*Org, error)
	// OrgByIdentifier returns the org whose Identifier is identifier, or
	// ErrNotFound. A store may find it through the name's reservation
	// (ReserveName), which the Manager always holds before an org bears a
	// name: an org whose name is not reserved by it may not be found.
	OrgByIdentifier(ctx context.Context, identifier string) (*Org, error)
	// UpdateOrg replaces the stored org that has org.ID and org.Version with
	// org, and on success increments org.Version to the stored version.
	// It gives ErrNotFound if no org has the id, and ErrConflict if the
	// stored version differs (someone else updated it since it was read).
	// The version check catches stale reads, but it is not atomic against a
	// concurrent update on every server (FerretDB reads, then writes), so
	// writers of one org must hold its lock (LockOrg). Callers must also
	// hold the reservation of a new Identifier first: an update onto a taken
	// identifier is refused, but not every server reports that as
	// ErrConflict (FerretDB answers InternalError).
	UpdateOrg(ctx context.Context, org *Org) error
	// DeleteOrg removes the org with id, or gives ErrNotFound.
	DeleteOrg(ctx context.Context, id OrgID) error
	// UnfinishedOrgs returns the orgs whose State is not OrgActive and
	// whose ModifiedAt is before before: operations that may have died.
	UnfinishedOrgs(ctx context.Context, before time.Time) ([]*Org, error)

	// LockOrg claims org for owner until expires, so that one multi-step
	// operation at a time changes it. It must be an atomic insert: of
	// concurrent calls exactly one succeeds and the others get ErrConflict.
	// A lock whose expiry is before now is taken over.
	LockOrg(ctx context.Context, org OrgID, owner string, expires, now time.Time) error
	// RenewLock extends owner's lock on org until expires. It gives
	// ErrConflict if owner does not hold the lock: it was released, or
	// taken over after it expired.
	RenewLock(ctx context.Context, org OrgID, owner string, expires time.Time) error
	// UnlockOrg releases owner's lock on org. Releasing a lock that is not
	// held, or is held by another owner, changes nothing and succeeds.
	UnlockOrg(ctx context.Context, org OrgID, owner string) error

	// PutOperation records op in the journal of operations in flight,
	// replacing the entry of the same organization. Only the holder of
	// the organization's lock writes its entry.
	PutOperation(ctx context.Context, op *Operation) error
	// DeleteOperation removes org's entry from the journal; removing a
	// missing entry succeeds.
	DeleteOperation(ctx context.Context, org OrgID) error
	// Operations returns every entry of the journal. The journal holds
	// only what is in flight, so it is empty when nothing is pending, and
	// reading it must cost no more than its entries (on FerretDB: a
	// collection of its own).
	Operations(ctx context.Context) ([]*Operation, error)

	// DeleteExpired removes the revocations that expired before now and
	// the login failures of addresses without an admin account whose last
	// failure is before failuresBefore, and returns how many records it
	// removed.
	DeleteExpired(ctx context.Context, now, failuresBefore time.Time) (int64, error)

	// CreateAdmin inserts admin. It gives ErrConflict if the id or the email
	// (compared lower-cased) is already in use.
	CreateAdmin(ctx context.Context, admin *Admin) error
	// AdminByEmail returns the admin with the lower-cased email, or ErrNotFound.
	AdminByEmail(ctx context.Context, email string) (*Admin, error)
	// AdminByID returns the admin with id, or ErrNotFound.
	AdminByID(ctx context.Context, id AdminID) (*Admin, error)
	// DeleteAdmin removes the admin with id, or gives ErrNotFound.
	DeleteAdmin(ctx context.Context, id AdminID) error
	// SetAdminPassword replaces the password hash of the admin id and
	// increments its TokenGeneration, which rejects the tokens issued
	// before, and returns the new generation. It gives ErrNotFound if there
	// is no such admin.
	SetAdminPassword(ctx context.Context, id AdminID, hash []byte) (int64, error)

	// RecordLoginFailure counts a failed login for the lower-cased email,
	// at at: on its admin account (FailedLogins, LastFailedLogin) if known
	// says there is one, otherwise on a record of the address alone, so
	// that unknown addresses are throttled like known ones, at the same
	// cost.
	RecordLoginFailure(ctx context.Context, email string, known bool, at time.Time) error
	// ClaimLoginAttempt is RecordLoginFailure done only if the last
	// failure recorded for email is still last (zero: none), as one
	// compare-and-set; it reports whether it counted. Of concurrent claims
	// with the same last, at most one should succeed (on servers whose
	// updates read and then write, such as FerretDB, a few may).
	ClaimLoginAttempt(ctx context.Context, email string, known bool, last, at time.Time) (bool, error)
	// ResetLoginFailures clears the count of email, on its admin account
	// and on the record of the address alone.
	ResetLoginFailures(ctx context.Context, email string) error
	// LoginFailures returns the count and the last failure of an email
	// that has no admin account (zero if none was recorded).
	LoginFailures(ctx context.Context, email string) (int, time.Time, error)

	// RevokeToken records the token id jti as revoked; it may be forgotten
	// after expires, when the token expires. Revoking twice succeeds.
	RevokeToken(ctx context.Context, jti string, expires time.Time) error
	// TokenRevoked reports whether jti was revoked.
	TokenRevoked(ctx context.Context, jti string) (bool, error)

	// CreateTenantCollection creates the collection name holding one
	// metadata document stamped with createdAt and owner, the org it is
	// created for. It gives ErrConflict if the collection exists.
	CreateTenantCollection(ctx context.Context, name string, owner OrgID, createdAt time.Time) error
	// TenantCollectionOwner returns the owner stamped in the collection's
	// metadata document. It gives ErrNotFound if the collection or its
	// stamp is missing (a collection not created by CreateTenantCollection).
	TenantCollectionOwner(ctx context.Context, name string) (OrgID, error)
	// TenantCollectionExists reports whether the collection name exists.
	TenantCollectionExists(ctx context.Context, name string) (bool, error)
	// CountTenantDocuments counts the documents of the collection name,
	// metadata document included; a missing collection counts 0.
	CountTenantDocuments(ctx context.Context, name string) (int64, error)
	// RenameTenantCollection renames the collection from to to, keeping its
	// documents. It gives ErrNotFound if from does not exist, ErrConflict
	// if to exists, and an error matching errors.ErrUnsupported if the
	// server or deployment refuses renames (the Manager then copies the
	// documents with CopyTenantDocuments).
	RenameTenantCollection(ctx context.Context, from, to string) error
	// DropTenantCollection removes the collection name and its documents.
	// Dropping a missing collection succeeds.
	DropTenantCollection(ctx context.Context, name string) error
	// CopyTenantDocuments copies every document of the collection from,
	// metadata document included, into the collection to, creating it if
	// needed. It streams in batches, so its memory does not grow with the
	// number of documents, and skips documents already in to (same _id),
	// so that an interrupted copy can run again. It calls progress, if not
	// nil, after each batch with the number of documents read so far, and
	// returns the number of documents read.
	CopyTenantDocuments(ctx context.Context, from, to string, progress func(read int64)) (int64, error)

	// AddTenantDocument inserts doc into the collection, creating the
	// collection if it does not exist, as MongoDB does. It gives
	// ErrConflict if the collection has a document with doc.ID.
	AddTenantDocument(ctx context.Context, collection string, doc *Document) error
	// TenantDocument returns the document id of the collection, or
	// ErrNotFound (also when the collection does not exist).
	TenantDocument(ctx context.Context, collection, id string) (*Document, error)
	// TenantDocuments returns up to limit documents of the collection in
	// id order, starting after the id after ("" for the first). Only
	// documents whose id is an ObjectID are listed, and not the metadata
	// document.
	TenantDocuments(ctx context.Context, collection, after string, limit int) ([]*Document, error)
	// DeleteTenantDocument removes the document id of the collection, or
	// gives ErrNotFound.
	DeleteTenantDocument(ctx context.Context, collection, id string) error
}

// Operation is an entry of the journal of operations in flight: an
// organization that a create, rename or delete is changing. The entry is
// written, under the organization's lock, before the operation's first
// step and removed after its last, so that recovery finds every
// unfinished operation by reading the journal alone.
type Operation struct {
	OrgID OrgID
	// Kind is OpCreate, OpRename or OpDelete.
	Kind string
	// Names are the identifiers the operation may reserve: recovery
	// releases those the organization does not use once it is settled.
	Names   []string
	Started time.Time
}

// Kinds of Operation.
const (
	OpCreate = "create"
	OpRename = "rename"
	OpDelete = "delete"
)

// Reservation is a reserved identifier.
type Reservation struct {
	Identifier string
	OrgID      OrgID
	ReservedAt time.Time
}

// Pinger is implemented by stores that can check their database answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Manager runs the organization lifecycle and admin authentication over a
// Store. It is safe for concurrent use.
type Manager struct {
	store    Store
	now      func() time.Time
	log      *slog.Logger
	cost     int
	lifetime time.Duration
	issuer   string
	method   jwt.SigningMethod
	current  key
	keys     map[string]any // kid → verification key, current and previous
	jwks     []byte         // the public keys, encoded once (see JWKS)
	lease    time.Duration
	parser   *jwt.Parser

	hashSlots    chan struct{}
	hashWait     time.Duration
	hashQueue    int          // waiters for a slot, at most
	hashWaiting  atomic.Int64 // waiters now
	backoffAfter int
	backoffBase  time.Duration
	backoffMax   time.Duration
	accountAfter int

	// unsettleable holds the orgs whose journal entry recovery cannot
	// settle without an operator (errCollectionsLost): RecoverPending
	// skips them until the next full pass, instead of every tick.
	unsettleable sync.Map

	limits tenantLimits

	// dummyHash is what a login for an unknown email is compared with;
	// see newDummyHash.
	dummyHash []byte
}

// Defaults and limits of the Manager's options.
const (
	DefaultBcryptCost = 12
	MinBcryptCost     = 10
	// MaxBcryptCost is the highest bcrypt cost accepted: one hash at 14
	// takes about a second on a current server core (0.95 s measured on
	// the project's 2-core Xeon machine; 12 takes 0.24 s), and each step up doubles
	// it: at 31 one hash would take a day and a half.
	MaxBcryptCost        = 14
	DefaultTokenLifetime = 60 * time.Minute
	DefaultIssuer        = "tenancy"
	// DefaultOperationLease is how long the lock a create, rename or
	// delete holds on its organization lasts without renewal. A live
	// operation renews it every third of the lease, however long it runs;
	// the operation of a process that dies is settled by recovery (see
	// RunRecovery) once the lease has run out.
	DefaultOperationLease = 15 * time.Second
	// MinOperationLease is the shortest lease WithOperationLease accepts.
	MinOperationLease = 500 * time.Millisecond
	DefaultAlgorithm  = "HS256"
	// MinSecretLength is the shortest signing secret accepted, in bytes:
	// 256 bits, the strength HS256 offers (RFC 7518, section 3.2).
	MinSecretLength = 32
	// MaxLeeway is the most clock skew WithLeeway allows for exp and iat.
	MaxLeeway = time.Minute
	// DefaultHashWait is the longest a request queued for a bcrypt slot
	// waits (see WithHashQueue).
	DefaultHashWait = 10 * time.Second
	// DefaultHashQueue is how many requests may wait for each bcrypt slot.
	DefaultHashQueue = 8
	// DefaultBackoffAfter, DefaultBackoffBase and DefaultBackoffMax are
	// WithLoginBackoff's defaults: after 10 failed logins in a row an
	// address waits 1 s, doubling with each further failure, up to 15 min.
	DefaultBackoffAfter = 10
	DefaultBackoffBase  = time.Second
	DefaultBackoffMax   = 15 * time.Minute
)

// Option configures a Manager.
type Option func(*config) error

type config struct {
	now          func() time.Time
	log          *slog.Logger
	cost         int
	lifetime     time.Duration
	issuer       string
	algorithm    string
	secret       []byte
	previous     [][]byte
	edKey        ed25519.PrivateKey
	edPrevious   []ed25519.PublicKey
	leeway       time.Duration
	lease        time.Duration
	hashSlots    int
	hashWait     time.Duration
	hashQueue    int // per slot
	backoffAfter int
	backoffBase  time.Duration
	backoffMax   time.Duration
	quota        int64
	pageReads    int
	accountAfter int
}

// Ping checks that the store's database answers, when the store can tell
// (see Pinger); otherwise it returns nil.
func (m *Manager) Ping(ctx context.Context) error {
	if p, ok := m.store.(Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// New returns a Manager over store. It does no I/O. It returns an error if
// no signing key is given (WithSigningSecret for the HS algorithms,
// WithEd25519Key for EdDSA) or an option is invalid.
func New(store Store, opts ...Option) (*Manager, error) {
	if store == nil {
		return nil, errors.New("tenancy: store must not be nil")
	}
	c := config{
		now:          time.Now,
		log:          slog.New(slog.DiscardHandler),
		cost:         DefaultBcryptCost,
		lifetime:     DefaultTokenLifetime,
		issuer:       DefaultIssuer,
		algorithm:    DefaultAlgorithm,
		lease:        DefaultOperationLease,
		hashSlots:    min(runtime.GOMAXPROCS(0), runtime.NumCPU()),
		hashWait:     DefaultHashWait,
		hashQueue:    DefaultHashQueue,
		backoffAfter: DefaultBackoffAfter,
		backoffBase:  DefaultBackoffBase,
		backoffMax:   DefaultBackoffMax,
		pageReads:    DefaultTenantPageReads,
		accountAfter: DefaultAccountBackoffAfter,
	}
	for _, opt := range opts {
		if err := opt(&c); err != nil {
			return nil, err
		}
	}
	m := &Manager{
		store:        store,
		now:          c.now,
		log:          c.log,
		cost:         c.cost,
		lifetime:     c.lifetime,
		issuer:       c.issuer,
		method:       jwt.GetSigningMethod(c.algorithm),
		keys:         map[string]any{},
		lease:        c.lease,
		hashSlots:    make(chan struct{}, c.hashSlots),
		hashWait:     c.hashWait,
		hashQueue:    c.hashQueue * c.hashSlots,
		backoffAfter: c.backoffAfter,
		backoffBase:  c.backoffBase,
		backoffMax:   c.backoffMax,
		accountAfter: c.accountAfter,
		limits:       tenantLimits{quota: c.quota, pageReads: c.pageReads},
		dummyHash:    newDummyHash(c.cost),
	}
	var kids []string
	addKey := func(k key) {
		if _, ok := m.keys[k.kid]; !ok {
			m.keys[k.kid] = k.verify
			kids = append(kids, k.kid)
		}
	}
	if c.algorithm == "EdDSA" {
		if c.edKey == nil {
			return nil, errors.New("tenancy: EdDSA needs a key (WithEd25519Key)")
		}
		pub := c.edKey.Public().(ed25519.PublicKey)
		m.current = key{kid: ed25519KID(pub), sign: c.edKey, verify: pub}
		addKey(m.current)
		for _, p := range c.edPrevious {
			addKey(key{kid: ed25519KID(p), verify: p})
		}
	} else {
		if c.secret == nil {
			return nil, errors.New("tenancy: a signing secret is required (WithSigningSecret)")
		}
		m.current = key{kid: hmacKID(c.secret), sign: c.secret, verify: c.secret}
		addKey(m.current)
		for _, p := range c.previous {
			addKey(key{kid: hmacKID(p), verify: p})
		}
	}
	m.jwks = jwksOf(kids, m.keys)
	m.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{m.method.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(c.issuer),
		jwt.WithLeeway(c.leeway),
		jwt.WithTimeFunc(c.now),
	)
	return m, nil
}
