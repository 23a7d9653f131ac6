package mongostore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/mongostore"
	"github.com/tenancy/tenancy/mongotest"
	"github.com/tenancy/tenancy/storetest"
)

// tenantDatabase returns a second database on db's client, dropped when
// the test ends.
func tenantDatabase(t *testing.T, db *mongo.Database) *mongo.Database {
	t.Helper()
	tdb := db.Client().Database(db.Name() + "_t")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = tdb.Drop(ctx)
	})
	return tdb
}

// TestConformanceTenantDatabase runs the suite with the tenant
// collections in a database of their own, as the reference server keeps
// them on its embedded database.
func TestConformanceTenantDatabase(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tenancy.Store {
		db := mongotest.NewDatabase(t)
		s := openStore(t, db, mongostore.WithTenantDatabase(tenantDatabase(t, db)))
		require.NoError(t, s.EnsureIndexes(t.Context()))
		return s
	})
}

// TestTenantDatabaseHoldsTenants checks where each kind of collection
// goes under WithTenantDatabase: organizations in the store's database,
// tenant collections, renamed or copied, in the tenant database.
func TestTenantDatabaseHoldsTenants(t *testing.T) {
	db := mongotest.NewDatabase(t)
	tdb := tenantDatabase(t, db)
	for _, copying := range []bool{false, true} {
		opts := []mongostore.Option{mongostore.WithTenantDatabase(tdb)}
		if copying {
			opts = append(opts, mongostore.WithoutRenameCollection())
		}
		s := openStore(t, db, opts...)
		require.NoError(t, s.EnsureIndexes(t.Context()))
		m, err := tenancy.New(s, tenancy.WithBcryptCost(tenancy.MinBcryptCost), tenancy.WithSigningSecret([]byte("q8Zr3vN1xK7pL2mW9tY4bH6cJ0dF5gS8aE1uI3oP7nM=")))
		require.NoError(t, err)
		ctx := t.Context()
		name := map[bool]string{false: "Rename Co", true: "Copy Co"}[copying]
		org, err := m.CreateOrg(ctx, tenancy.CreateOrgParams{Name: name, AdminEmail: "a@" + org2host(copying), AdminPassword: "MySecurePassword123"})
		require.NoError(t, err)
		_, err = m.Tenant(org.ID).Insert(ctx, map[string]any{"n": 1})
		require.NoError(t, err)
		res, err := m.RenameOrg(ctx, org.ID, name+" Two")
		require.NoError(t, err)
		assert.Equal(t, int64(2), res.DocumentsMigrated, "the document and the metadata")

		inPrimary, err := db.ListCollectionNames(ctx, bson.D{})
		require.NoError(t, err)
		inTenants, err := tdb.ListCollectionNames(ctx, bson.D{})
		require.NoError(t, err)
		assert.Contains(t, inPrimary, mongostore.OrgsCollection)
		assert.NotContains(t, inPrimary, res.PreviousCollection)
		assert.NotContains(t, inPrimary, res.CurrentCollection)
		assert.Contains(t, inTenants, res.CurrentCollection)
		assert.NotContains(t, inTenants, res.PreviousCollection)
		assert.NotContains(t, inTenants, mongostore.OrgsCollection)
	}
}

func org2host(copying bool) string {
	if copying {
		return "copy.example.com"
	}
	return "rename.example.com"
}

// fillTenant creates the tenant collection name of owner in db with 30
// documents and a unique index of the application's.
func fillTenant(t *testing.T, db *mongo.Database, name string, owner tenancy.OrgID) {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, openStore(t, db).CreateTenantCollection(ctx, name, owner, time.Now()))
	for i := range 30 {
		_, err := db.Collection(name).InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "sku", Value: name + string(rune('A'+i))}})
		require.NoError(t, err)
	}
	_, err := db.Collection(name).Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "sku", Value: 1}}, Options: options.Index().SetUnique(true).SetName("sku_unique"),
	})
	require.NoError(t, err)
}

// checkMoved checks that name is gone from db and whole in tdb: 30
// documents and the metadata, each once, the owner, the unique index.
func checkMoved(t *testing.T, s *mongostore.Store, db, tdb *mongo.Database, name string, owner tenancy.OrgID) {
	t.Helper()
	ctx := t.Context()
	left, err := db.ListCollectionNames(ctx, bson.D{})
	require.NoError(t, err)
	assert.NotContains(t, left, name)
	n, err := tdb.Collection(name).CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.Equal(t, int64(31), n, "%s: 30 documents and the metadata, each once", name)
	got, err := s.TenantCollectionOwner(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, owner, got)
	_, err = tdb.Collection(name).InsertOne(ctx, bson.D{{Key: "sku", Value: name + "A"}})
	assert.True(t, mongo.IsDuplicateKeyError(err), "the unique index moved with the collection: %v", err)
}

// TestMoveTenantCollections moves the tenant collections of a database
// written without WithTenantDatabase into the tenant database, with their
// documents and indexes, leaving everything else: with the store's
// defaults (renameCollection on MongoDB, a copy on FerretDB, which does
// not rename across databases), and by copying, including a copy cut
// short. A second move finds nothing to do.
func TestMoveTenantCollections(t *testing.T) {
	owner := tenancy.OrgID("507f1f77bcf86cd799439011")
	for _, tc := range []struct {
		name string
		opts []mongostore.Option
	}{{"defaults", nil}, {"copying", []mongostore.Option{mongostore.WithoutRenameCollection()}}} {
		t.Run(tc.name, func(t *testing.T) {
			db := mongotest.NewDatabase(t)
			ctx := t.Context()
			fillTenant(t, db, "tenant_a", owner)
			fillTenant(t, db, "tenant_b", owner)
			_, err := db.Collection("unrelated").InsertOne(ctx, bson.D{{Key: "x", Value: 1}})
			require.NoError(t, err)
			tdb := tenantDatabase(t, db)
			if tc.opts != nil {
				// An earlier move was cut short after copying the first 11
				// documents of tenant_b, in natural order: the metadata
				// document first.
				cur, err := db.Collection("tenant_b").Find(ctx, bson.D{}, options.Find().SetLimit(11))
				require.NoError(t, err)
				var first []bson.Raw
				require.NoError(t, cur.All(ctx, &first))
				for _, d := range first {
					_, err := tdb.Collection("tenant_b").InsertOne(ctx, d)
					require.NoError(t, err)
				}
			}
			s := openStore(t, db, append(tc.opts, mongostore.WithTenantDatabase(tdb))...)
			require.NoError(t, s.EnsureIndexes(ctx))
			moved, err := s.MoveTenantCollections(ctx, db)
			require.NoError(t, err)
			assert.Equal(t, 2, moved)
			checkMoved(t, s, db, tdb, "tenant_a", owner)
			checkMoved(t, s, db, tdb, "tenant_b", owner)
			left, err := db.ListCollectionNames(ctx, bson.D{})
			require.NoError(t, err)
			assert.Contains(t, left, "unrelated")
			moved, err = s.MoveTenantCollections(ctx, db)
			require.NoError(t, err)
			assert.Zero(t, moved, "the second move finds nothing left")
		})
	}
}

// TestMoveRefusesAnotherOrganizationsCollection leaves a tenant
// collection in place when the tenant database holds one of the same
// name that another organization owns (a collection left there by an
// earlier layout): nothing is merged, and the move says why.
func TestMoveRefusesAnotherOrganizationsCollection(t *testing.T) {
	db := mongotest.NewDatabase(t)
	ctx := t.Context()
	tdb := tenantDatabase(t, db)
	fillTenant(t, db, "tenant_a", "507f1f77bcf86cd799439011")
	require.NoError(t, openStore(t, tdb).CreateTenantCollection(ctx, "tenant_a", "507f1f77bcf86cd799439022", time.Now()))
	s := openStore(t, db, mongostore.WithTenantDatabase(tdb))
	require.NoError(t, s.EnsureIndexes(ctx))
	_, err := s.MoveTenantCollections(ctx, db)
	require.ErrorIs(t, err, tenancy.ErrConflict)
	assert.ErrorContains(t, err, "not an earlier copy")
	n, err := db.Collection("tenant_a").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.Equal(t, int64(31), n, "the source is kept whole")
	n, err = tdb.Collection("tenant_a").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "the other organization's collection is untouched")
}
