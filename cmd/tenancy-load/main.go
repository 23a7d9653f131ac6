// Command tenancy-load measures the API against its performance budgets,
// as ratios taken in one run on one machine:
//
//	go run ./cmd/tenancy-load
//
// By default it starts the reference server's stack in this process (the
// embedded FerretDB under a temporary directory, mongostore, the Manager
// and httpapi on a loopback listener); -mongo-uri runs it on another
// database instead, with two Managers over the store: one without a cache
// and one with the sole-writer cache (tenancy.WithSoleWriterCache) the
// reference server turns on for its embedded database, each behind its
// own listener. It then measures, in alternating rounds:
//
//	h  GET /health: the HTTP stack's limit
//	a  a bare mongo-driver FindOne on org_registry by identifier
//	b  GET /org/get through the full HTTP stack
//	B  GET /org/get with the cache
//	t  an authenticated GET /tenant/documents/{id}
//	T  the same with the cache
//	c  POST /admin/login
//	d  GET /org/get while a login flood runs
//
// and prints throughput, p50/p99 and database commands per request of
// each, with the ratios the budgets are stated in: B/h throughput (≥ 0.5),
// T's commands per request (1), b/a throughput (≥ 0.85), c/(cores ÷ one
// bcrypt compare) (≥ 0.9) and d-p99/b-p99 (≤ 3). Every round is bounded
// in time.
//
// With -scale it measures growth instead, as a user runs the server: it
// builds ./examples/server (run it from the repository's root), starts it
// on its embedded database in a temporary directory with bcrypt cost 10,
// and over loopback HTTP creates -orgs organizations (10,000) with 4
// clients, timing GET /org/get, login and create at 100 and at -orgs; then
// fills one tenant with -docs documents of 4 KB, timing pages of 20 at 100
// and at -docs documents, and samples the server's RSS under 16
// concurrent page requests. It prints p50/p99, the ratios and the budgets.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/crypto/bcrypt"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/httpapi"
	"github.com/tenancy/tenancy/internal/embeddb"
	"github.com/tenancy/tenancy/mongostore"
)

func main() {
	var (
		mongoURI    = flag.String("mongo-uri", "", "database to run on (default: an embedded FerretDB in a temporary directory)")
		concurrency = flag.Int("c", 8, "concurrent clients per scenario")
		round       = flag.Duration("round", 2*time.Second, "length of one round of one scenario")
		rounds      = flag.Int("rounds", 3, "rounds of each scenario, alternating")
		cost        = flag.Int("cost", tenancy.DefaultBcryptCost, "bcrypt cost")
		slots       = flag.Int("hash-slots", min(runtime.GOMAXPROCS(0), runtime.NumCPU()), "bcrypt computations at once (tenancy.WithHashConcurrency; default as the library's)")
		profile     = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")

		scale        = flag.Bool("scale", false, "scale mode: run the reference server binary and compare costs at 100 and at -orgs organizations, and pages at 100 and at -docs documents")
		scaleOrgs    = flag.Int("orgs", 10_000, "scale mode: organizations to create")
		scaleDocs    = flag.Int("docs", 10_000, "scale mode: documents in the measured tenant")
		docSize      = flag.Int("doc-size", 4096, "scale mode: bytes per document")
		pages        = flag.Int("pages", 15, "scale mode: page requests timed at each tenant size")
		scaleClients = flag.Int("scale-clients", 4, "scale mode: clients creating organizations and documents")
		scaleTimeout = flag.Duration("scale-timeout", 30*time.Minute, "scale mode: stop creating organizations after this long and measure what exists; the tenant gets as long again")
	)
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if *scale {
		c := *cost
		if !isSet("cost") {
			c = tenancy.MinBcryptCost
		}
		if err := runScale(scaleConfig{orgs: *scaleOrgs, docs: *scaleDocs, docSize: *docSize, clients: *scaleClients,
			pages: *pages, cost: c, timeout: *scaleTimeout}); err != nil {
			pprof.StopCPUProfile()
			fmt.Fprintln(os.Stderr, "tenancy-load:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*mongoURI, *concurrency, *round, *rounds, *cost, *slots); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "tenancy-load:", err)
		os.Exit(1)
	}
}

// isSet reports whether the flag name was given.
func isSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// stack is the API under measurement: one store, and two Managers over
// it, each served on a loopback listener: without a cache, and with the
// sole-writer cache the reference server turns on for its embedded
// database.
type stack struct {
	db              *mongo.Database
	commands        atomic.Int64 // database commands sent
	m               *tenancy.Manager
	base, baseCache string
	org             *tenancy.Org
	token, docID    string
	closers         []func()
}

func (s *stack) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

func startStack(ctx context.Context, uri string, cost, slots int) (_ *stack, err error) {
	s := &stack{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if uri == "" {
		dir, err := os.MkdirTemp("", "tenancy-load-*")
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func() { os.RemoveAll(dir) })
		var stop func()
		if uri, stop, err = embeddb.Start(dir); err != nil {
			return nil, err
		}
		s.closers = append(s.closers, stop)
	}
	monitor := &event.CommandMonitor{Started: func(context.Context, *event.CommandStartedEvent) { s.commands.Add(1) }}
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetMonitor(monitor))
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = client.Disconnect(context.Background()) })
	s.db = client.Database(fmt.Sprintf("tenancy_load_%d", time.Now().UnixNano()))
	s.closers = append(s.closers, func() { _ = s.db.Drop(context.Background()) })
	store, err := mongostore.New(s.db)
	if err != nil {
		return nil, err
	}
	if err := store.EnsureIndexes(ctx); err != nil {
		return nil, err
	}
	secret := make([]byte, 48)
	_, _ = rand.Read(secret)
	opts := []tenancy.Option{tenancy.WithSigningSecret(secret), tenancy.WithBcryptCost(cost), tenancy.WithHashConcurrency(slots)}
	if s.m, err = tenancy.New(store, opts...); err != nil {
		return nil, err
	}
	cached, err := tenancy.New(store, append(opts, tenancy.WithSoleWriterCache(10_000))...)
	if err != nil {
		return nil, err
	}
	if s.base, err = serveAPI(s, s.m); err != nil {
		return nil, err
	}
	if s.baseCache, err = serveAPI(s, cached); err != nil {
		return nil, err
	}
	if s.org, err = s.m.CreateOrg(ctx, tenancy.CreateOrgParams{Name: "Acme Corporation", AdminEmail: "admin@acme.com", AdminPassword: "MySecurePassword123"}); err != nil {
		return nil, err
	}
	tok, err := s.m.Login(ctx, "admin@acme.com", "MySecurePassword123")
	if err != nil {
		return nil, err
	}
	doc, err := s.m.Tenant(s.org.ID).Insert(ctx, map[string]any{"name": "Widget", "price": 10})
	if err != nil {
		return nil, err
	}
	s.token, s.docID = tok.AccessToken, doc.ID
	return s, nil
}

// serveAPI serves httpapi over m on a loopback listener until s closes,
// and returns its base URL.
func serveAPI(s *stack, m *tenancy.Manager) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	api, err := httpapi.New(m, httpapi.WithLoginRateLimit(0, 0))
	if err != nil {
		ln.Close()
		return "", err
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	s.closers = append(s.closers, func() { srv.Close() })
	return "http://" + ln.Addr().String(), nil
}

// scenario is one measured request, and what it costs in database
// commands per request.
type scenario struct {
	key, name string
	fn        func() error
	result
	commands int64
}

func run(uri string, conc int, round time.Duration, rounds, cost, slots int) error {
	ctx := context.Background()
	s, err := startStack(ctx, uri, cost, slots)
	if err != nil {
		return err
	}
	defer s.close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4 * conc, MaxConnsPerHost: 4 * conc}}

	// One bcrypt compare at this cost, alone, gives the login ceiling.
	hash, _ := bcrypt.GenerateFromPassword([]byte("MySecurePassword123"), cost)
	start := time.Now()
	const compares = 5
	for range compares {
		_ = bcrypt.CompareHashAndPassword(hash, []byte("MySecurePassword123"))
	}
	compare := time.Since(start) / compares
	cores := runtime.NumCPU()

	orgs := s.db.Collection(mongostore.OrgsCollection)
	loginBody, _ := json.Marshal(map[string]string{"email": "admin@acme.com", "password": "MySecurePassword123"})
	get := func(base string) func() error {
		return func() error {
			return request(hc, "GET", base+"/org/get?organization_name=Acme%20Corporation", nil, "", http.StatusOK)
		}
	}
	tenantRead := func(base string) func() error {
		return func() error {
			return request(hc, "GET", base+"/tenant/documents/"+s.docID, nil, s.token, http.StatusOK)
		}
	}
	scenarios := []*scenario{
		{key: "h", name: "GET /health (the HTTP stack's limit)", fn: func() error { return request(hc, "GET", s.base+"/health", nil, "", http.StatusOK) }},
		{key: "a", name: "bare FindOne by identifier", fn: func() error {
			return orgs.FindOne(ctx, bson.D{{Key: "identifier", Value: "acme-corporation"}}).Err()
		}},
		{key: "b", name: "GET /org/get", fn: get(s.base)},
		{key: "B", name: "GET /org/get, cache", fn: get(s.baseCache)},
		{key: "t", name: "GET /tenant/documents/{id}", fn: tenantRead(s.base)},
		{key: "T", name: "GET /tenant/documents/{id}, cache", fn: tenantRead(s.baseCache)},
		{key: "c", name: "POST /admin/login", fn: func() error { return request(hc, "POST", s.base+"/admin/login", loginBody, "", http.StatusOK) }},
	}
	flooded := &scenario{key: "d", name: "GET /org/get under a login flood", fn: get(s.base)}
	for r := range rounds {
		log.Printf("round %d of %d", r+1, rounds)
		for _, sc := range scenarios {
			before := s.commands.Load()
			sm := measure(conc, round, sc.fn)
			sc.add(sm)
			sc.commands += s.commands.Load() - before
		}
		// d: GET while as many clients flood logins.
		floodCtx, stopFlood := context.WithCancel(ctx)
		var flood sync.WaitGroup
		for range conc {
			flood.Go(func() {
				for floodCtx.Err() == nil {
					_ = request(hc, "POST", s.base+"/admin/login", loginBody, "", 0)
				}
			})
		}
		flooded.add(measure(conc, round, flooded.fn))
		stopFlood()
		flood.Wait()
	}

	fmt.Printf("machine: %s/%s, %d cores, GOMAXPROCS %d; database: %s; bcrypt cost %d, one compare %v, %d hash slots; %d clients, %d rounds of %v\n\n",
		runtime.GOOS, runtime.GOARCH, cores, runtime.GOMAXPROCS(0), map[bool]string{true: "embedded FerretDB (SQLite), in this process", false: "-mongo-uri"}[uri == ""],
		cost, compare.Round(time.Microsecond), slots, conc, rounds, round)
	by := map[string]*scenario{"d": flooded}
	for _, sc := range append(scenarios, flooded) {
		by[sc.key] = sc
		perRequest := "      "
		if sc.n > 0 && sc.key != "d" {
			perRequest = fmt.Sprintf("%6.2f", float64(sc.commands)/float64(sc.n))
		}
		fmt.Printf("%s  %-40s %9.1f req/s  p50 %9v  p99 %9v  db commands/req %s  errors %d\n", sc.key, sc.name, sc.rate(), sc.pct(50), sc.pct(99), perRequest, sc.errors)
	}
	ceiling := float64(cores) / compare.Seconds()
	fmt.Printf("\nbudgets:\n")
	fmt.Printf("  B/h throughput (cached GET / HTTP limit)  %.2f  (budget >= 0.5)\n", by["B"].rate()/by["h"].rate())
	fmt.Printf("  b/h throughput (uncached GET)             %.2f\n", by["b"].rate()/by["h"].rate())
	fmt.Printf("  T db commands per request                 %.2f  (budget 1: the document)\n", float64(by["T"].commands)/float64(max(by["T"].n, 1)))
	fmt.Printf("  b/a throughput                            %.2f  (budget >= 0.85)\n", by["b"].rate()/by["a"].rate())
	fmt.Printf("  c/(cores / one compare)                   %.2f  (budget >= 0.90; ceiling %.1f logins/s)\n", by["c"].rate()/ceiling, ceiling)
	fmt.Printf("  d p99 / b p99                             %.2f  (budget <= 3)\n", float64(by["d"].pct(99))/float64(by["b"].pct(99)))
	return nil
}

func request(hc *http.Client, method, url string, body []byte, token string, want int) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if want != 0 && res.StatusCode != want {
		return fmt.Errorf("%s %s: status %d", method, url, res.StatusCode)
	}
	return nil
}

// sample is one round of one scenario.
type sample struct {
	n       int64
	errors  int64
	elapsed time.Duration
	lat     []time.Duration
}

// measure runs fn from conc goroutines for d.
func measure(conc int, d time.Duration, fn func() error) sample {
	var n, errs atomic.Int64
	lats := make([][]time.Duration, conc)
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range conc {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				t := time.Now()
				if err := fn(); err != nil && !errors.Is(err, context.Canceled) {
					errs.Add(1)
					continue
				}
				lats[i] = append(lats[i], time.Since(t))
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return sample{n: n.Load(), errors: errs.Load(), elapsed: time.Since(start), lat: slices.Concat(lats...)}
}

// result accumulates the rounds of one scenario.
type result struct {
	n       int64
	errors  int64
	elapsed time.Duration
	lat     []time.Duration
}

func (r *result) add(s sample) {
	r.n += s.n
	r.errors += s.errors
	r.elapsed += s.elapsed
	r.lat = append(r.lat, s.lat...)
}

func (r *result) rate() float64 { return float64(r.n) / r.elapsed.Seconds() }

func (r *result) pct(p int) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	slices.Sort(r.lat)
	return r.lat[min(len(r.lat)-1, len(r.lat)*p/100)].Round(time.Microsecond)
}
