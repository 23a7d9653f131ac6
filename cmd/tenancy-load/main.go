// Command tenancy-load measures the API against its performance budgets,
// as ratios taken in one run on one machine:
//
//	go run ./cmd/tenancy-load
//
// By default it starts the reference server's stack in this process (the
// embedded FerretDB under a temporary directory, mongostore, the Manager
// and httpapi on a loopback listener); -mongo-uri runs it on another
// database instead. It then measures, in alternating rounds:
//
//	a  a bare mongo-driver FindOne on org_registry by identifier
//	b  GET /org/get through the full HTTP stack
//	c  POST /admin/login
//	d  GET /org/get while a login flood runs
//
// and prints throughput and p50/p99 of each, with the ratios the budgets
// are stated in: b/a throughput (≥ 0.85), c/(cores ÷ one bcrypt compare)
// (≥ 0.9) and d-p99/b-p99 (≤ 3). Every round is bounded in time.
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

func run(uri string, conc int, round time.Duration, rounds, cost, slots int) error {
	ctx := context.Background()
	if uri == "" {
		dir, err := os.MkdirTemp("", "tenancy-load-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		var stop func()
		if uri, stop, err = embeddb.Start(dir); err != nil {
			return err
		}
		defer stop()
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return err
	}
	defer func() { _ = client.Disconnect(ctx) }()
	db := client.Database(fmt.Sprintf("tenancy_load_%d", time.Now().UnixNano()))
	defer func() { _ = db.Drop(context.Background()) }()
	store, err := mongostore.New(db)
	if err != nil {
		return err
	}
	if err := store.EnsureIndexes(ctx); err != nil {
		return err
	}
	secret := make([]byte, 48)
	_, _ = rand.Read(secret)
	m, err := tenancy.New(store, tenancy.WithSigningSecret(secret), tenancy.WithBcryptCost(cost),
		tenancy.WithHashConcurrency(slots))
	if err != nil {
		return err
	}
	if _, err := m.CreateOrg(ctx, tenancy.CreateOrgParams{Name: "Acme Corporation", AdminEmail: "admin@acme.com", AdminPassword: "MySecurePassword123"}); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	api, err := httpapi.New(m, httpapi.WithLoginRateLimit(0, 0))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()
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

	orgs := db.Collection(mongostore.OrgsCollection)
	find := func() error {
		return orgs.FindOne(ctx, bson.D{{Key: "identifier", Value: "acme-corporation"}}).Err()
	}
	get := func() error {
		return request(hc, "GET", base+"/org/get?organization_name=Acme%20Corporation", nil, http.StatusOK)
	}
	loginBody, _ := json.Marshal(map[string]string{"email": "admin@acme.com", "password": "MySecurePassword123"})
	login := func() error { return request(hc, "POST", base+"/admin/login", loginBody, http.StatusOK) }

	results := map[string]*result{"a": {}, "b": {}, "c": {}, "d": {}}
	for r := range rounds {
		log.Printf("round %d of %d", r+1, rounds)
		results["a"].add(measure(conc, round, find))
		results["b"].add(measure(conc, round, get))
		results["c"].add(measure(conc, round, login))
		// d: GET while as many clients flood logins.
		floodCtx, stopFlood := context.WithCancel(ctx)
		var flood sync.WaitGroup
		for range conc {
			flood.Go(func() {
				for floodCtx.Err() == nil {
					_ = request(hc, "POST", base+"/admin/login", loginBody, 0)
				}
			})
		}
		results["d"].add(measure(conc, round, get))
		stopFlood()
		flood.Wait()
	}

	fmt.Printf("machine: %s/%s, %d cores, GOMAXPROCS %d; database: %s; bcrypt cost %d, one compare %v, %d hash slots; %d clients, %d rounds of %v\n\n",
		runtime.GOOS, runtime.GOARCH, cores, runtime.GOMAXPROCS(0), map[bool]string{true: "embedded FerretDB (SQLite), in this process", false: "-mongo-uri"}[flag.Lookup("mongo-uri").Value.String() == ""],
		cost, compare.Round(time.Microsecond), slots, conc, rounds, round)
	names := map[string]string{"a": "bare FindOne", "b": "GET /org/get", "c": "POST /admin/login", "d": "GET /org/get under a login flood"}
	for _, k := range []string{"a", "b", "c", "d"} {
		r := results[k]
		fmt.Printf("%s  %-34s %9.1f req/s  p50 %9v  p99 %9v  errors %d\n", k, names[k], r.rate(), r.pct(50), r.pct(99), r.errors)
	}
	ceiling := float64(cores) / compare.Seconds()
	fmt.Printf("\nbudgets:\n")
	fmt.Printf("  b/a throughput                  %.2f  (budget >= 0.85)\n", results["b"].rate()/results["a"].rate())
	fmt.Printf("  c/(cores / one compare)         %.2f  (budget >= 0.90; ceiling %.1f logins/s)\n", results["c"].rate()/ceiling, ceiling)
	fmt.Printf("  d p99 / b p99                   %.2f  (budget <= 3)\n", float64(results["d"].pct(99))/float64(results["b"].pct(99)))
	return nil
}

func request(hc *http.Client, method, url string, body []byte, want int) error {
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
