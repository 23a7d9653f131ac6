// Command server runs the Organization Management API.
//
//	go run ./examples/server
//
// With no MONGO_URI it starts an embedded FerretDB (SQLite) that keeps its
// data under DATA_DIR, and with no SECRET_KEY it generates a signing secret
// there on first start: nothing needs setting up. Configuration comes from
// the environment and from a .env file in the working directory (the
// environment wins); .env.example lists every variable.
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/joho/godotenv"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/httpapi"
	"github.com/tenancy/tenancy/internal/embeddb"
	"github.com/tenancy/tenancy/mongostore"
	"github.com/tenancy/tenancy/webhook"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, a second one stops the process at once.
		<-ctx.Done()
		stop()
	}()
	if err := godotenv.Load(); err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(os.Stderr, "server: .env:", err)
		os.Exit(1)
	}
	if err := run(ctx, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

// defaultMaxConnections is MAX_CONNECTIONS's default: client connections
// open at once, idle ones closed first at the bound.
const defaultMaxConnections = 4096

// reservedFiles are the file descriptors kept from client connections for
// the database driver's pool (both ends of each, with the embedded
// database), its files and the process's own.
const reservedFiles = 256

// run serves until ctx is done, then shuts down gracefully.
func run(ctx context.Context, getenv func(string) string, logOut io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: cfg.logLevel}))
	if err := loadSigningKey(cfg, log); err != nil {
		return err
	}
	tr, err := newTracing(ctx, getenv)
	if err != nil {
		return err
	}
	if tr != nil {
		defer tr.shutdown()
		log.Info("exporting OpenTelemetry traces over OTLP")
	}
	store, closeDB, err := openStore(ctx, cfg, log, tr)
	if err != nil {
		return err
	}
	defer closeDB()
	var x *metrics
	if cfg.metricsAddr != "" {
		x = newMetrics()
		stopMetrics, err := serveMetrics(ctx, cfg.metricsAddr, x, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	m, err := newManager(cfg, store, log, x, tr)
	if err != nil {
		return err
	}

	// Settle, in the background from now on, what this or another
	// process left unfinished: a full pass at once, then the journal of
	// operations in flight every second. What cannot be settled is logged
	// and tried again; it blocks no other org.
	recoveryCtx, stopRecovery := context.WithCancel(ctx)
	recovered := make(chan struct{})
	go func() {
		defer close(recovered)
		_ = m.RunRecovery(recoveryCtx, recoveryInterval)
	}()
	defer func() { stopRecovery(); <-recovered }()
	if cfg.webhookURL != "" {
		// One serving process at a time delivers (a lease); the others
		// stand by.
		delivered := make(chan struct{})
		go func() {
			defer close(delivered)
			_ = m.DeliverEvents(recoveryCtx)
		}()
		defer func() { stopRecovery(); <-delivered }()
		log.Info("delivering events to the webhook", "url", redactURL(cfg.webhookURL))
	}
	return serve(ctx, cfg, m, log, x, tr)
}

// loadSigningKey reads, or generates and keeps under DATA_DIR, the key
// of cfg's algorithm that the environment does not give.
func loadSigningKey(cfg *config, log *slog.Logger) (err error) {
	if cfg.algorithm == "EdDSA" && cfg.edSeed == nil {
		path := filepath.Join(cfg.dataDir, "ed25519_seed")
		s, err := loadOrCreateSecret(path)
		if err != nil {
			return err
		}
		if cfg.edSeed, err = hex.DecodeString(string(s)); err != nil || len(cfg.edSeed) != ed25519.SeedSize {
			return fmt.Errorf("%s must hold 64 hex digits; delete it to generate a new key", path)
		}
		log.Warn("ED25519_PRIVATE_KEY is not set: signing tokens with a key generated and kept in "+path+"; production should set ED25519_PRIVATE_KEY", "path", path)
	}
	if cfg.algorithm != "EdDSA" && !cfg.secretFromEnv {
		path := filepath.Join(cfg.dataDir, "secret_key")
		if cfg.secret, err = loadOrCreateSecret(path); err != nil {
			return err
		}
		log.Warn("SECRET_KEY is not set: signing tokens with a secret generated and kept in "+path+"; production should set SECRET_KEY", "path", path)
	}
	return nil
}

// newManager returns the Manager cfg describes over store.
// x, if not nil, counts what it does, and tr traces it.
func newManager(cfg *config, store tenancy.Store, log *slog.Logger, x *metrics, tr *tracing) (*tenancy.Manager, error) {
	opts := []tenancy.Option{
		tenancy.WithTokenLifetime(cfg.tokenLifetime),
		tenancy.WithBcryptCost(cfg.bcryptCost),
		tenancy.WithLogger(log),
		tenancy.WithTenantQuota(cfg.tenantQuota),
	}
	var hooks tenancy.Hooks
	if x != nil {
		hooks = x.hooks()
	}
	if tr != nil {
		hooks = tr.hooks(hooks)
	}
	opts = append(opts, tenancy.WithHooks(hooks))
	if cfg.webhookURL != "" {
		sender, err := webhook.NewSender(cfg.webhookURL, cfg.webhookSecret)
		if err != nil {
			return nil, err
		}
		opts = append(opts, tenancy.WithEventDelivery(tenancy.EventDelivery{
			Sink: sender, FirstRetry: cfg.webhookFirst, MaxRetry: cfg.webhookMax,
		}))
	}
	switch {
	case cfg.cacheSize == 0:
	case cfg.mongoURI == "":
		opts = append(opts, tenancy.WithSoleWriterCache(cfg.cacheSize))
	case cfg.cacheStale > 0:
		opts = append(opts, tenancy.WithCache(cfg.cacheSize, cfg.cacheStale))
	}
	if cfg.algorithm == "EdDSA" {
		opts = append(opts, tenancy.WithEd25519Key(ed25519.NewKeyFromSeed(cfg.edSeed)))
	} else {
		opts = append(opts, tenancy.WithHMACAlgorithm(cfg.algorithm),
			tenancy.WithSigningSecret(cfg.secret), tenancy.WithPreviousSigningSecrets(cfg.previous...))
	}
	return tenancy.New(store, opts...)
}

// serve serves the API over m on cfg's address until ctx is done, then
// shuts down gracefully: requests in flight finish first.
func serve(ctx context.Context, cfg *config, m *tenancy.Manager, log *slog.Logger, x *metrics, tr *tracing) error {
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	maxConns := cfg.maxConns
	if fds, ok := openFileLimit(); ok && uint64(maxConns)+reservedFiles > fds {
		// Leave the database (and the embedded one's files) their share.
		maxConns = int(max(fds, 2*reservedFiles) - reservedFiles)
		log.Warn("MAX_CONNECTIONS lowered to fit the open file limit", "max_connections", maxConns, "open_files", fds)
	}
	handler, err := newHandler(cfg, m, log, x, tr)
	if err != nil {
		_ = ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(httpapi.LimitConnections(srv, ln, maxConns)) }()
	log.Info("serving the Organization Management API", "addr", ln.Addr().String(), "database", cfg.database, "docs", "/docs", "cache", cfg.cacheMode())

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight")
	shutCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("shutdown complete")
	return nil
}

// newHandler returns the API over m with the server's middleware: its
// access log, and x's and tr's hooks when they are on.
func newHandler(cfg *config, m *tenancy.Manager, log *slog.Logger, x *metrics, tr *tracing) (http.Handler, error) {
	opts := []httpapi.Option{httpapi.WithLogger(log),
		httpapi.WithLoginRateLimit(cfg.loginRate, max(1, int(3*cfg.loginRate))),
		httpapi.WithTrustedProxies(cfg.proxies...)}
	if x != nil || tr != nil {
		opts = append(opts, httpapi.WithRequestHook(func(r *http.Request, route string, status int, d time.Duration) {
			if x != nil {
				x.request(r, route, status, d)
			}
			if tr != nil {
				tr.request(r, route, status, d)
			}
		}))
	}
	api, err := httpapi.New(m, opts...)
	if err != nil {
		return nil, err
	}
	handler := accessLog(log, api)
	if tr != nil {
		handler = tr.handler(handler)
	}
	return handler, nil
}

// openStore opens the store of cfg: on MONGO_URI, or on an embedded
// FerretDB under DATA_DIR started here. Where the embedded database keeps
// its tenants in a database of their own (TENANT_DB), it first moves
// there the tenant collections an earlier version kept in PRIMARY_DB. The
// function it returns closes what it opened.
func openStore(ctx context.Context, cfg *config, log *slog.Logger, tr *tracing) (_ *mongostore.Store, _ func(), err error) {
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	uri := cfg.mongoURI
	var storeOpts []mongostore.Option
	if uri == "" {
		dbDir, err := filepath.Abs(filepath.Join(cfg.dataDir, "db"))
		if err != nil {
			return nil, nil, err
		}
		var stopDB func()
		if uri, stopDB, err = embeddb.Start(dbDir); err != nil {
			return nil, nil, err
		}
		closers = append(closers, stopDB)
		ids, err := embeddb.NewIDOrder(dbDir)
		if err != nil {
			return nil, nil, err
		}
		closers = append(closers, func() { _ = ids.Close() })
		// FerretDB over SQLite counts exactly from its pages (its plain
		// count reads every document), and pages tenant documents by
		// the ids' index read beside it.
		storeOpts = append(storeOpts, mongostore.WithCollStatsCount(), mongostore.WithIDOrder(ids))
		log.Info("no MONGO_URI set: using embedded FerretDB", "data", dbDir)
	}
	// A request finds the database down within DB_TIMEOUT and answers
	// 503, instead of waiting the driver's default 30 s; options in
	// MONGO_URI win.
	clientOpts := options.Client().SetServerSelectionTimeout(cfg.dbTimeout).SetConnectTimeout(cfg.dbTimeout)
	if tr != nil {
		clientOpts.SetMonitor(tr.monitor())
	}
	client, err := mongo.Connect(clientOpts.ApplyURI(uri))
	if err != nil {
		return nil, nil, fmt.Errorf("MONGO_URI: %w", err)
	}
	closers = append(closers, func() { _ = client.Disconnect(context.Background()) })
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = client.Ping(pingCtx, nil)
	cancel()
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach the database at %s: %v", redact(uri), err)
	}
	if cfg.renameByCopy {
		storeOpts = append(storeOpts, mongostore.WithoutRenameCollection())
	}
	storeOpts = append(storeOpts, mongostore.WithTenantDatabase(client.Database(cfg.tenantDB)))
	store, err := mongostore.New(client.Database(cfg.database), storeOpts...)
	if err != nil {
		return nil, nil, err
	}
	if err := store.EnsureIndexes(ctx); err != nil {
		return nil, nil, err
	}
	if cfg.mongoURI != "" && cfg.tenantDB != cfg.database {
		if err := checkNoTenantsIn(ctx, client.Database(cfg.database), cfg.tenantDB); err != nil {
			return nil, nil, err
		}
	}
	if cfg.mongoURI == "" {
		// The embedded database has this one process (its directory is
		// locked), so nothing writes to the collections while they move.
		moved, err := store.MoveTenantCollections(ctx, client.Database(cfg.database))
		if err != nil {
			return nil, nil, fmt.Errorf("move tenant collections from %s to %s: %w", cfg.database, cfg.tenantDB, err)
		}
		if moved > 0 {
			log.Info("moved tenant collections to their own database", "collections", moved, "from", cfg.database, "to", cfg.tenantDB)
		}
	}
	return store, closeAll, nil
}

// checkNoTenantsIn refuses a TENANT_DB other than PRIMARY_DB (db) while
// PRIMARY_DB still holds tenant collections: their organizations would
// find no data. On MongoDB other servers may be writing to them, so the
// move is the operator's to make, not this process's.
func checkNoTenantsIn(ctx context.Context, db *mongo.Database, tenantDB string) error {
	names, err := db.ListCollectionNames(ctx, bson.D{{Key: "name", Value: bson.D{{Key: "$regex", Value: "^" + tenancy.TenantCollectionPrefix}}}})
	if err != nil {
		return fmt.Errorf("list the collections of PRIMARY_DB %s: %w", db.Name(), err)
	}
	if len(names) > 0 {
		return fmt.Errorf("PRIMARY_DB %s holds %d tenant collections (%s, ...) but TENANT_DB is %s: move them there first "+
			"(mongostore.MoveTenantCollections, with no server running), or unset TENANT_DB", db.Name(), len(names), names[0], tenantDB)
	}
	return nil
}

// loadOrCreateSecret reads the signing secret kept at path, creating a
// random one on first use.
func loadOrCreateSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < tenancy.MinSecretLength {
			return nil, fmt.Errorf("%s holds a secret under %d bytes; delete it to generate a new one", path, tenancy.MinSecretLength)
		}
		return []byte(s), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read secret: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("DATA_DIR: %w", err)
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	s := hex.EncodeToString(raw)
	// Write a temporary file, then link it into place: the secret appears
	// whole or not at all, and of two first starts only one creates it.
	tmp, err := os.CreateTemp(dir, ".secret-*")
	if err != nil {
		return nil, fmt.Errorf("write secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(s + "\n"); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write secret: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
		return loadOrCreateSecret(path)
	} else if err != nil {
		return nil, fmt.Errorf("write secret: %w", err)
	}
	return []byte(s), nil
}

// redact hides the password of a connection string.
func redact(uri string) string {
	if at := strings.LastIndex(uri, "@"); at > 0 {
		if scheme := strings.Index(uri, "://"); scheme > 0 && scheme < at {
			return uri[:scheme+3] + "***" + uri[at:]
		}
	}
	return uri
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// accessLog logs one line per request with the id httpapi gave it.
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("request_id", w.Header().Get("X-Request-ID")),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Int("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)),
		)
	})
}

// cacheMode says, for the start-up log, which cache newManager turns on.
func (c *config) cacheMode() string {
	switch {
	case c.cacheSize == 0:
		return "off"
	case c.mongoURI == "":
		return fmt.Sprintf("exact (sole writer), %d records", c.cacheSize)
	case c.cacheStale > 0:
		return fmt.Sprintf("%d records, stale for at most %v", c.cacheSize, c.cacheStale)
	}
	return "off (set CACHE_MAX_STALE to turn it on with MONGO_URI)"
}

// redactURL returns rawURL without its user information and query, which
// may hold credentials, for the log.
func redactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable)"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}
