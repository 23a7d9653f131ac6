package mongostore_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/mongostore"
	"github.com/tenancy/tenancy/mongotest"
	"github.com/tenancy/tenancy/storetest"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

func newStore(t *testing.T) *mongostore.Store {
	t.Helper()
	s := openStore(t, mongotest.NewDatabase(t))
	if err := s.EnsureIndexes(t.Context()); err != nil {
		t.Fatalf("EnsureIndexes: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tenancy.Store { return newStore(t) })
}

// TestLockTakeoverInterleaving pauses one caller between reading the last
// lock and inserting its own, and lets others lock, unlock and lock again
// meanwhile: the paused caller must not end up holding the lock too.
func TestLockTakeoverInterleaving(t *testing.T) {
	paused, resume := make(chan struct{}), make(chan struct{})
	var armed atomic.Bool
	monitor := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName == "insert" && armed.CompareAndSwap(true, false) {
			close(paused)
			<-resume
		}
	}}
	slowDB := mongotest.NewDatabase(t, options.Client().SetMonitor(monitor))
	slow := openStore(t, slowDB)
	require.NoError(t, slow.EnsureIndexes(t.Context()))
	client, err := mongo.Connect(options.Client().ApplyURI(mongotest.URI(t)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	fast := openStore(t, client.Database(slowDB.Name()))

	ctx := t.Context()
	org := tenancy.OrgID("507f1f77bcf86cd799439011")
	t0 := time.Now().UTC()
	require.NoError(t, fast.LockOrg(ctx, org, "crashed", t0.Add(time.Minute), t0))
	later := t0.Add(2 * time.Minute) // the first lock has expired

	armed.Store(true)
	slowErr := make(chan error, 1)
	go func() { slowErr <- slow.LockOrg(ctx, org, "slow", later.Add(time.Minute), later) }()
	<-paused

	require.NoError(t, fast.LockOrg(ctx, org, "x", later.Add(time.Minute), later), "takeover of the expired lock")
	require.NoError(t, fast.UnlockOrg(ctx, org, "x"))
	require.NoError(t, fast.LockOrg(ctx, org, "y", later.Add(time.Minute), later), "lock after release")

	close(resume)
	assert.ErrorIs(t, <-slowErr, tenancy.ErrConflict, "the paused caller read a stale lock and must lose")
	assert.ErrorIs(t, fast.LockOrg(ctx, org, "z", later.Add(time.Minute), later), tenancy.ErrConflict, "y still holds it")
}

// TestConformanceCollStatsCount runs the suite with the count the
// reference server uses on its embedded FerretDB (SQLite).
func TestConformanceCollStatsCount(t *testing.T) {
	if mongotest.Backend() != "ferretdb" {
		t.Skip("WithCollStatsCount is for FerretDB over SQLite; the tests run on", mongotest.Backend())
	}
	storetest.Run(t, func(t *testing.T) tenancy.Store {
		s := openStore(t, mongotest.NewDatabase(t), mongostore.WithCollStatsCount())
		require.NoError(t, s.EnsureIndexes(t.Context()))
		return s
	})
}

// TestCopyKeepsIndexes checks that a copying rename keeps the indexes an
// application made on its tenant collection, as renameCollection does.
func TestCopyKeepsIndexes(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	require.NoError(t, s.CreateTenantCollection(ctx, "tenant_a", "507f1f77bcf86cd799439011", time.Now()))
	_, err := s.Collection("tenant_a").Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "sku", Value: 1}},
		Options: options.Index().SetUnique(true).SetName("sku_unique"),
	})
	require.NoError(t, err)
	_, err = s.Collection("tenant_a").InsertOne(ctx, bson.D{{Key: "sku", Value: "A-1"}})
	require.NoError(t, err)

	_, err = s.CopyTenantDocuments(ctx, "tenant_a", "tenant_b", nil)
	require.NoError(t, err)
	specs, err := s.Collection("tenant_b").Indexes().ListSpecifications(ctx)
	require.NoError(t, err)
	var names []string
	for _, spec := range specs {
		names = append(names, spec.Name)
		if spec.Name == "sku_unique" {
			assert.True(t, spec.Unique != nil && *spec.Unique, "still unique")
		}
	}
	assert.Contains(t, names, "sku_unique")
	_, err = s.Collection("tenant_b").InsertOne(ctx, bson.D{{Key: "sku", Value: "A-1"}})
	assert.True(t, mongo.IsDuplicateKeyError(err), "the copy enforces the unique index: %v", err)

	_, err = s.CopyTenantDocuments(ctx, "tenant_a", "tenant_b", nil)
	assert.NoError(t, err, "copying again, as after an interruption, finds the indexes there")
}

// TestLeftOverLockClaim leaves the claim of the next lock number without
// its marker, as a process that died between the two writes does: the
// lock is busy while the claim's expiry holds, and taken once it passed.
func TestLeftOverLockClaim(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	org := tenancy.OrgID("507f1f77bcf86cd799439011")
	t0 := time.Now().UTC()
	_, err := s.Collection(mongostore.LeasesCollection).InsertOne(ctx, bson.D{
		{Key: "_id", Value: string(org) + ":1"}, {Key: "owner", Value: "dead"}, {Key: "expires", Value: t0.Add(time.Minute)},
	})
	require.NoError(t, err)
	assert.ErrorIs(t, s.LockOrg(ctx, org, "early", t0.Add(time.Minute), t0), tenancy.ErrConflict, "the claim may be a live taker's")
	later := t0.Add(2 * time.Minute)
	require.NoError(t, s.LockOrg(ctx, org, "late", later.Add(time.Minute), later), "a claim past its expiry is removed")
	assert.ErrorIs(t, s.LockOrg(ctx, org, "other", later.Add(time.Minute), later), tenancy.ErrConflict, "and the lock is held")
	require.NoError(t, s.RenewLock(ctx, org, "late", later.Add(2*time.Minute)))
}

// openStore is mongostore.New that fails the test on an error.
func openStore(t testing.TB, db *mongo.Database, opts ...mongostore.Option) *mongostore.Store {
	t.Helper()
	s, err := mongostore.New(db, opts...)
	require.NoError(t, err)
	return s
}

// TestNewRefusesBadOptions checks that a value an option cannot use is an
// error from New instead of being dropped for the default.
func TestNewRefusesBadOptions(t *testing.T) {
	db := mongotest.NewDatabase(t)
	other, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Disconnect(context.Background()) })
	tests := map[string]struct {
		opt  mongostore.Option
		want string
	}{
		"nil tenant database":         {mongostore.WithTenantDatabase(nil), "tenant database"},
		"tenant database elsewhere":   {mongostore.WithTenantDatabase(other.Database("tenants")), "client"},
		"nil IDOrder":                 {mongostore.WithIDOrder(nil), "IDOrder"},
		"copy batch 0":                {mongostore.WithCopyBatchSize(0), "copy batch size"},
		"copy batch over the maximum": {mongostore.WithCopyBatchSize(mongostore.MaxCopyBatchSize + 1), "copy batch size"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := mongostore.New(db, mongostore.WithCollStatsCount(), tt.opt)
			assert.ErrorContains(t, err, tt.want)
			assert.Nil(t, s)
		})
	}
	_, err = mongostore.New(nil)
	assert.ErrorContains(t, err, "database")
	_, err = mongostore.New(db, mongostore.WithCopyBatchSize(mongostore.MaxCopyBatchSize), mongostore.WithTenantDatabase(db.Client().Database("tenants")))
	assert.NoError(t, err)
}
