package tenancy_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/crypto/bcrypt"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/internal/heapsample"
	"github.com/tenancy/tenancy/memstore"
	"github.com/tenancy/tenancy/mongostore"
	"github.com/tenancy/tenancy/mongotest"
)

// The identifier is derived on every GET /org/get: keep it cheap.
func BenchmarkIdentifier(b *testing.B) {
	for _, name := range []string{"Tech Innovations Corp 2.0", "Société Générale 東京テック"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tenancy.Identifier(name); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRenameTenant renames a tenant of 10,000 and 100,000 documents
// by renameCollection and by the copying fallback, and reports the peak
// growth of the Go heap during the rename (peak-heap-MiB; the embedded
// database runs in this process, so its memory counts too), the documents
// moved per second, and the time the server spent in renameCollection
// and in counting the moved documents (documents_migrated). The copy
// streams in batches: its peak heap must not grow with the number of
// documents; renameCollection's time must not grow with them either.
// On the embedded FerretDB the store counts as the reference server does
// (mongostore.WithCollStatsCount).
func BenchmarkRenameTenant(b *testing.B) {
	cases := []struct {
		mode string
		docs int
	}{
		{"renameCollection", 10_000}, {"renameCollection", 100_000},
		{"copy", 10_000}, {"copy", 100_000},
	}
	for _, bc := range cases {
		b.Run(fmt.Sprintf("%s/docs=%d", bc.mode, bc.docs), func(b *testing.B) {
			ctx := b.Context()
			var opts []mongostore.Option
			if mongotest.Backend() == "ferretdb" {
				// As the reference server counts on its embedded FerretDB.
				opts = append(opts, mongostore.WithCollStatsCount())
			}
			if bc.mode == "copy" {
				opts = append(opts, mongostore.WithoutRenameCollection())
			}
			var renameTime, countTime atomic.Int64
			monitor := &event.CommandMonitor{Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
				switch e.CommandName {
				case "renameCollection":
					renameTime.Add(int64(e.Duration))
				case "aggregate", "count":
					countTime.Add(int64(e.Duration))
				}
			}}
			store := newStore(b, mongotest.NewDatabase(b, options.Client().SetMonitor(monitor)), opts...)
			if err := store.EnsureIndexes(ctx); err != nil {
				b.Fatal(err)
			}
			m, err := tenancy.New(store, tenancy.WithSigningSecret(testSecret), tenancy.WithBcryptCost(tenancy.MinBcryptCost))
			if err != nil {
				b.Fatal(err)
			}
			org, err := m.CreateOrg(ctx, tenancy.CreateOrgParams{Name: "Bench 0", AdminEmail: "bench@example.com", AdminPassword: "password123"})
			if err != nil {
				b.Fatal(err)
			}
			fillTenant(b, store.Collection(org.TenantCollection), bc.docs)

			// Collect often, so that the peak follows live memory
			// rather than garbage awaiting collection.
			defer debug.SetGCPercent(debug.SetGCPercent(10))
			var peak uint64
			i := 0
			renameTime.Store(0)
			countTime.Store(0)
			for b.Loop() {
				i++
				runtime.GC()
				stop := heapsample.Start()
				res, err := m.RenameOrg(ctx, org.ID, fmt.Sprintf("Bench %d", i))
				peak = max(peak, stop())
				if err != nil {
					b.Fatal(err)
				}
				if res.DocumentsMigrated != int64(bc.docs)+1 {
					b.Fatalf("migrated %d documents, want %d", res.DocumentsMigrated, bc.docs+1)
				}
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(bc.docs)*float64(b.N)/b.Elapsed().Seconds(), "docs/s")
			b.ReportMetric(float64(renameTime.Load())/1e6/float64(b.N), "renameCollection-ms")
			b.ReportMetric(float64(countTime.Load())/1e6/float64(b.N), "count-ms")
		})
	}
}

// fillTenant inserts n documents of about 150 bytes into c.
func fillTenant(b *testing.B, c *mongo.Collection, n int) {
	b.Helper()
	batch := make([]any, 0, 1000)
	for i := range n {
		batch = append(batch, bson.D{
			{Key: "i", Value: i}, {Key: "name", Value: fmt.Sprintf("customer %06d", i)},
			{Key: "email", Value: fmt.Sprintf("customer%06d@example.com", i)},
			{Key: "tags", Value: bson.A{"a", "b", "c"}}, {Key: "balance", Value: float64(i) * 1.5},
		})
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := c.InsertMany(b.Context(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// BenchmarkVerifyToken measures token verification against the JWT
// library's own parse of the same token with the same checks: the
// difference is what tenancy adds (budget: at most 2 µs).
func BenchmarkVerifyToken(b *testing.B) {
	m, err := tenancy.New(memstore.New(), tenancy.WithSigningSecret(testSecret), tenancy.WithBcryptCost(tenancy.MinBcryptCost))
	if err != nil {
		b.Fatal(err)
	}
	tok, err := m.IssueToken(&tenancy.Admin{ID: "507f191e810c19729de860ea", Email: "a@acme.com"}, &tenancy.Membership{OrgID: "507f1f77bcf86cd799439011", AdminID: "507f191e810c19729de860ea", Role: tenancy.RoleOwner})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("tenancy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.VerifyToken(tok.AccessToken); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jwt-library", func(b *testing.B) {
		p := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithIssuer(tenancy.DefaultIssuer))
		b.ReportAllocs()
		for b.Loop() {
			var c jwt.MapClaims
			if _, err := p.ParseWithClaims(tok.AccessToken, &c, func(*jwt.Token) (any, error) { return testSecret, nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGetOrg and BenchmarkLogin run through the Manager on the
// test database (embedded FerretDB by default).
func BenchmarkGetOrg(b *testing.B) {
	m := benchManager(b)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.OrgByName(ctx, "Acme Corporation"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLogin(b *testing.B) {
	m := benchManager(b)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Login(ctx, "admin@acme.com", "MySecurePassword123"); err != nil {
			b.Fatal(err)
		}
	}
}

func benchManager(b *testing.B) *tenancy.Manager {
	b.Helper()
	store := newStore(b, mongotest.NewDatabase(b))
	if err := store.EnsureIndexes(b.Context()); err != nil {
		b.Fatal(err)
	}
	m, err := tenancy.New(store, tenancy.WithSigningSecret(testSecret), tenancy.WithBcryptCost(tenancy.MinBcryptCost))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.CreateOrg(b.Context(), tenancy.CreateOrgParams{Name: "Acme Corporation", AdminEmail: "admin@acme.com", AdminPassword: "MySecurePassword123"}); err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkScale measures, in one run on one database, OrgByName by name,
// Login and CreateOrg at 100 organizations and again at 10,000, and
// reports the p50 of each and the ratios (the budgets: GET and create
// ≤ 1.5×, login ≤ 1.2×). The organizations are written through the
// Store (name, record, admin with one shared bcrypt hash) to keep the run
// short, without their tenant collections: this measures how lookups grow
// with the records. (Ten thousand collections are ten thousand SQLite
// tables on the embedded FerretDB, whose every schema change costs in
// proportion to the tables; see BENCHMARKS.md.) On the embedded FerretDB
// every lookup must be by _id for the ratios to hold.
//
//	go test -run '^$' -bench Scale -benchtime 1x .
func BenchmarkScale(b *testing.B) {
	ctx := b.Context()
	store := newStore(b, mongotest.NewDatabase(b))
	if err := store.EnsureIndexes(ctx); err != nil {
		b.Fatal(err)
	}
	m, err := tenancy.New(store, tenancy.WithSigningSecret(testSecret), tenancy.WithBcryptCost(tenancy.MinBcryptCost))
	if err != nil {
		b.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("MySecurePassword123"), tenancy.MinBcryptCost)
	if err != nil {
		b.Fatal(err)
	}
	grow := func(from, to int) {
		b.Helper()
		errs := make(chan error, 4)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := from + w; i < to; i += 4 {
					if err := addScaleOrg(ctx, store, i, hash); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	creates := 0
	// Samples spread over all n organizations: on FerretDB a read that
	// scans stops at its match, so the first ones made are found fast
	// even by a scan.
	measure := func(n int) (get, login, create time.Duration) {
		b.Helper()
		const samples = 40
		var gets, logins, makes []time.Duration
		for i := range samples {
			k := (i*2503 + n - 1) % n
			name := fmt.Sprintf("Scale Org %05d", k)
			start := time.Now()
			if _, err := m.OrgByName(ctx, name); err != nil {
				b.Fatal(err)
			}
			gets = append(gets, time.Since(start))
			start = time.Now()
			if _, err := m.Login(ctx, fmt.Sprintf("admin%05d@scale.test", k), "MySecurePassword123"); err != nil {
				b.Fatal(err)
			}
			logins = append(logins, time.Since(start))
			if i%4 == 0 {
				creates++
				start = time.Now()
				if _, err := m.CreateOrg(ctx, tenancy.CreateOrgParams{Name: fmt.Sprintf("Made %d", creates),
					AdminEmail: fmt.Sprintf("made%d@scale.test", creates), AdminPassword: "MySecurePassword123"}); err != nil {
					b.Fatal(err)
				}
				makes = append(makes, time.Since(start))
			}
		}
		return p50(gets), p50(logins), p50(makes)
	}
	grow(0, 100)
	get100, login100, create100 := measure(100)
	start := time.Now()
	grow(100, 10_000)
	b.Logf("grew to 10,000 organizations in %v", time.Since(start).Round(time.Second))
	get10k, login10k, create10k := measure(10_000)
	b.Logf("p50 at 100 → 10,000 organizations: GET %v → %v, login %v → %v, create %v → %v",
		get100, get10k, login100, login10k, create100, create10k)
	for b.Loop() {
		if _, err := m.OrgByName(ctx, "Scale Org 00042"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(get10k)/float64(get100), "get-ratio")
	b.ReportMetric(float64(login10k)/float64(login100), "login-ratio")
	b.ReportMetric(float64(create10k)/float64(create100), "create-ratio")
}

// addScaleOrg writes organization i as CreateOrg leaves one, but for its
// tenant collection.
func addScaleOrg(ctx context.Context, store *mongostore.Store, i int, hash []byte) error {
	name := fmt.Sprintf("Scale Org %05d", i)
	ident, err := tenancy.Identifier(name)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	org := &tenancy.Org{
		ID: tenancy.OrgID(fmt.Sprintf("5ca1e0%018x", i)), Name: name, Identifier: ident, TenantCollection: tenancy.TenantCollection(ident),
		AdminID: tenancy.AdminID(fmt.Sprintf("5ca1ea%018x", i)), AdminEmail: fmt.Sprintf("admin%05d@scale.test", i),
		State: tenancy.OrgActive, CreatedAt: now, ModifiedAt: now,
	}
	if err := store.ReserveName(ctx, ident, org.ID, now); err != nil {
		return err
	}
	if err := store.CreateOrg(ctx, org); err != nil {
		return err
	}
	return store.CreateAdmin(ctx, &tenancy.Admin{ID: org.AdminID, Email: org.AdminEmail, PasswordHash: hash, OrgID: org.ID, CreatedAt: now})
}

func p50(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
