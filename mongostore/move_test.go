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
		s := mongostore.New(db, mongostore.WithTenantDatabase(tenantDatabase(t, db)))
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
		s := mongostore.New(db, opts...)
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

// TestMoveTenantCollections moves the tenant collections of a database
// written without WithTenantDatabase into the tenant database, with their
// documents and indexes, leaving everything else; a move cut short (part
// of a collection already copied) completes, and a second move finds
// nothing to do.
func TestMoveTenantCollections(t *testing.T) {
	db := mongotest.NewDatabase(t)
	ctx := t.Context()
	old := mongostore.New(db)
	require.NoError(t, old.EnsureIndexes(ctx))
	owner := tenancy.OrgID("507f1f77bcf86cd799439011")
	for _, name := range []string{"tenant_a", "tenant_b"} {
		require.NoError(t, old.CreateTenantCollection(ctx, name, owner, time.Now()))
		for i := range 30 {
			_, err := db.Collection(name).InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "sku", Value: name + string(rune('A'+i))}})
			require.NoError(t, err)
		}
	}
	_, err := db.Collection("tenant_a").Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "sku", Value: 1}}, Options: options.Index().SetUnique(true).SetName("sku_unique"),
	})
	require.NoError(t, err)
	_, err = db.Collection("unrelated").InsertOne(ctx, bson.D{{Key: "x", Value: 1}})
	require.NoError(t, err)

	tdb := tenantDatabase(t, db)
	// An earlier move was cut short after copying part of tenant_b.
	for i := range 10 {
		_, err := tdb.Collection("tenant_b").InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "sku", Value: "tenant_b" + string(rune('A'+i))}})
		require.NoError(t, err)
	}

	for _, opts := range [][]mongostore.Option{{mongostore.WithoutRenameCollection()}, nil} {
		s := mongostore.New(db, append(opts, mongostore.WithTenantDatabase(tdb))...)
		require.NoError(t, s.EnsureIndexes(ctx))
		moved, err := s.MoveTenantCollections(ctx, db)
		require.NoError(t, err)
		if opts != nil {
			assert.Equal(t, 2, moved)
		} else {
			assert.Zero(t, moved, "the second move finds nothing left")
		}
		left, err := db.ListCollectionNames(ctx, bson.D{})
		require.NoError(t, err)
		assert.NotContains(t, left, "tenant_a")
		assert.NotContains(t, left, "tenant_b")
		assert.Contains(t, left, "unrelated")
		for _, name := range []string{"tenant_a", "tenant_b"} {
			n, err := tdb.Collection(name).CountDocuments(ctx, bson.D{})
			require.NoError(t, err)
			assert.Equal(t, int64(31), n, "%s: 30 documents and the metadata, each once", name)
			got, err := s.TenantCollectionOwner(ctx, name)
			require.NoError(t, err)
			assert.Equal(t, owner, got)
		}
		_, err = tdb.Collection("tenant_a").InsertOne(ctx, bson.D{{Key: "sku", Value: "tenant_aA"}})
		assert.True(t, mongo.IsDuplicateKeyError(err), "the unique index moved with the collection: %v", err)
	}
}
