package tenancy

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Manager runs the organization lifecycle and admin authentication over a
// Store. It is safe for concurrent use.
type Manager struct {
	store Store // for Ping; every other use goes through one role:
	// each part of the Manager names the role it needs.
	orgs          OrgStore
	journal       JournalStore
	admins        AdminStore
	loginFailures LoginFailureStore
	revocations   RevocationStore
	collections   CollectionStore
	documents     DocumentStore
	members       MemberStore
	invitations   InvitationStore
	events        EventStore

	// reads serve the reads of every request: the store, or the cache
	// of WithCache. exactReads are never stale: the store, or the cache
	// of WithSoleWriterCache; tenant writes, and the check after every
	// tenant call, use them.
	reads      hotReads
	exactReads hotReads
	cache      *cache

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

	notify         InvitationNotifier
	inviteLifetime time.Duration

	// cheapHashes, set only by tests, replace bcrypt.
	cheapHashes *passwordHashes
	hooks       Hooks

	delivery EventDelivery
	// recorded wakes DeliverEvents when this process records an event.
	recorded chan struct{}
	aside    chan struct{} // see recordAside

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
	defaultAlgorithm  = "HS256"
	// MinSecretLength is the shortest signing secret accepted, in bytes:
	// 256 bits, the strength HS256 offers (RFC 7518, section 3.2).
	MinSecretLength = 32
	// MaxLeeway is the most clock skew WithLeeway allows for exp and iat.
	MaxLeeway = time.Minute
	// defaultHashWait is the longest a request queued for a bcrypt slot
	// waits (see WithHashQueue).
	defaultHashWait = 10 * time.Second
	// defaultHashQueue is how many requests may wait for each bcrypt slot.
	defaultHashQueue = 8
	// defaultBackoffAfter, defaultBackoffBase and defaultBackoffMax are
	// WithLoginBackoff's defaults: after 10 failed logins in a row an
	// address waits 1 s, doubling with each further failure, up to 15 min.
	defaultBackoffAfter = 10
	defaultBackoffBase  = time.Second
	defaultBackoffMax   = 15 * time.Minute
)

// Option configures a Manager.
type Option func(*config) error

type config struct {
	now           func() time.Time
	log           *slog.Logger
	cost          int
	lifetime      time.Duration
	issuer        string
	hmacAlgorithm string
	secret        []byte
	previous      [][]byte
	edKey         ed25519.PrivateKey
	edPrevious    []ed25519.PublicKey
	leeway        time.Duration
	lease         time.Duration
	hashSlots     int
	hashWait      time.Duration
	hashQueue     int // per slot
	backoffAfter  int
	backoffBase   time.Duration
	backoffMax    time.Duration
	quota         int64
	pageReads     int
	accountAfter  int
	cacheSize     int
	cacheStale    time.Duration // 0 with a cache: sole writer

	notify         InvitationNotifier
	inviteLifetime time.Duration
	cheapHashes    *passwordHashes
	hooks          Hooks
	delivery       EventDelivery
}

// Ping checks that the store's database answers, when the store can tell
// (see Pinger); otherwise it returns nil.
func (m *Manager) Ping(ctx context.Context) error {
	if p, ok := m.store.(Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// New returns a Manager over store. It does no I/O. It returns the first
// invalid option's error, or an error if the signing options do not name
// exactly one key: WithSigningSecret (HMAC) or WithEd25519Key (EdDSA).
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
		lease:        DefaultOperationLease,
		hashSlots:    min(runtime.GOMAXPROCS(0), runtime.NumCPU()),
		hashWait:     defaultHashWait,
		hashQueue:    defaultHashQueue,
		backoffAfter: defaultBackoffAfter,
		backoffBase:  defaultBackoffBase,
		backoffMax:   defaultBackoffMax,
		pageReads:    defaultTenantPageReads,
		accountAfter: defaultAccountBackoffAfter,

		inviteLifetime: DefaultInvitationLifetime,
	}
	for _, opt := range opts {
		if err := opt(&c); err != nil {
			return nil, err
		}
	}
	m := &Manager{
		store:         store,
		orgs:          store,
		journal:       store,
		admins:        store,
		loginFailures: store,
		revocations:   store,
		collections:   store,
		documents:     store,
		members:       store,
		invitations:   store,
		events:        store,
		reads:         store,
		exactReads:    store,
		now:           c.now,
		log:           c.log,
		cost:          c.cost,
		lifetime:      c.lifetime,
		issuer:        c.issuer,
		keys:          map[string]any{},
		lease:         c.lease,
		hashSlots:     make(chan struct{}, c.hashSlots),
		hashWait:      c.hashWait,
		hashQueue:     c.hashQueue * c.hashSlots,
		backoffAfter:  c.backoffAfter,
		backoffBase:   c.backoffBase,
		backoffMax:    c.backoffMax,
		accountAfter:  c.accountAfter,
		limits:        tenantLimits{quota: c.quota, pageReads: c.pageReads},
		dummyHash:     newDummyHash(c.cost),

		notify:         c.notify,
		inviteLifetime: c.inviteLifetime,
		cheapHashes:    c.cheapHashes,
		hooks:          c.hooks,
		delivery:       c.delivery.withDefaults(),
		recorded:       make(chan struct{}, 1),
		aside:          make(chan struct{}, asideSlots),
	}
	if c.cacheSize > 0 {
		m.useCache(newCache(store, c.cacheSize, c.cacheStale, c.now))
	}
	var kids []string
	addKey := func(k key) {
		if _, ok := m.keys[k.kid]; !ok {
			m.keys[k.kid] = k.verify
			kids = append(kids, k.kid)
		}
	}
	if err := c.signingKeys(m, addKey); err != nil {
		return nil, err
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

// signingKeys sets m's signing method and current key, and adds every
// verification key, from the signing options whatever their order. They
// cannot contradict each other: options for the kind of key not chosen
// are refused.
func (c *config) signingKeys(m *Manager, addKey func(key)) error {
	switch {
	case c.edKey != nil && (c.secret != nil || len(c.previous) > 0 || c.hmacAlgorithm != ""):
		return errors.New("tenancy: WithEd25519Key signs with EdDSA; it cannot be combined with WithSigningSecret, WithPreviousSigningSecrets or WithHMACAlgorithm")
	case c.edKey != nil:
		pub := c.edKey.Public().(ed25519.PublicKey)
		m.method = jwt.SigningMethodEdDSA
		m.current = key{kid: ed25519KID(pub), sign: c.edKey, verify: pub}
		addKey(m.current)
		for _, p := range c.edPrevious {
			addKey(key{kid: ed25519KID(p), verify: p})
		}
		return nil
	case len(c.edPrevious) > 0:
		return errors.New("tenancy: WithPreviousEd25519Keys needs WithEd25519Key")
	case c.secret == nil:
		return errors.New("tenancy: a signing key is required: WithSigningSecret (HMAC) or WithEd25519Key (EdDSA)")
	}
	m.method = jwt.GetSigningMethod(cmp.Or(c.hmacAlgorithm, defaultAlgorithm))
	m.current = key{kid: hmacKID(c.secret), sign: c.secret, verify: c.secret}
	addKey(m.current)
	for _, p := range c.previous {
		addKey(key{kid: hmacKID(p), verify: p})
	}
	return nil
}

// useCache makes m read through c, and write through a store that keeps
// c up to date.
func (m *Manager) useCache(c *cache) {
	cs := cachingStore{Store: m.store, c: c}
	m.cache, m.reads = c, c
	m.orgs, m.journal, m.admins, m.loginFailures = cs, cs, cs, cs
	m.revocations, m.collections, m.documents = cs, cs, cs
	m.members, m.invitations, m.events = cs, cs, cs
	if c.maxStale == 0 {
		m.exactReads = c
	}
}
