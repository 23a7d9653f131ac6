package mongotest_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/tenancy/tenancy/mongotest"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

func TestNewDatabaseIsFreshAndDropped(t *testing.T) {
	var name string
	t.Run("a very long test name with spaces, punctuation and ünïcödé that must still fit", func(t *testing.T) {
		a := mongotest.NewDatabase(t)
		b := mongotest.NewDatabase(t)
		assert.NotEqual(t, a.Name(), b.Name())
		assert.LessOrEqual(t, len(a.Name()), 63)
		assert.True(t, strings.HasPrefix(a.Name(), "t_"))

		_, err := a.Collection("c").InsertOne(t.Context(), bson.D{{Key: "x", Value: 1}})
		require.NoError(t, err)
		n, err := b.Collection("c").CountDocuments(t.Context(), bson.D{})
		require.NoError(t, err)
		assert.Zero(t, n, "databases are isolated")
		name = a.Name()
	})

	db := mongotest.NewDatabase(t)
	_, err := db.Collection("c").InsertOne(t.Context(), bson.D{{Key: "x", Value: 1}})
	require.NoError(t, err)
	names, err := db.Client().ListDatabaseNames(t.Context(), bson.D{})
	require.NoError(t, err)
	assert.True(t, slices.Contains(names, db.Name()), "the listing shows live databases")
	assert.False(t, slices.Contains(names, name), "database %s dropped after its test", name)
}
