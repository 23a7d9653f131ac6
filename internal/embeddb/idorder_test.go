package embeddb

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// serveForTest starts the server in a new directory, stopped when the
// test ends, and returns the directory and a client of it.
func serveForTest(t *testing.T) (string, *mongo.Client) {
	t.Helper()
	dir := t.TempDir()
	uri, stop, err := Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return dir, c
}

// TestIDsAfter lists a collection's ObjectID ids in order whatever the
// order they were inserted in, page by page, leaving out the metadata
// document and ids of other types, and reads an index, not the table.
func TestIDsAfter(t *testing.T) {
	dir, c := serveForTest(t)
	ctx := t.Context()
	coll := c.Database("app").Collection("tenant_x")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "metadata", Value: bson.D{{Key: "org_id", Value: bson.NewObjectID()}}}}); err != nil {
		t.Fatal(err)
	}
	var want []bson.ObjectID
	for range 250 {
		want = append(want, bson.NewObjectID())
	}
	shuffled := slices.Clone(want)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for i, id := range shuffled {
		doc := bson.D{{Key: "_id", Value: id}, {Key: "n", Value: i}}
		if i == 7 {
			// A document of the tenant's own that has a metadata field.
			doc = append(doc, bson.E{Key: "metadata", Value: "user data"})
		}
		if _, err := coll.InsertOne(ctx, doc); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []any{"zzz", "6b1510100e90085a5cdead7b", int32(5), 1.5} {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
			t.Fatal(err)
		}
	}

	x, err := NewIDOrder(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	var got []bson.ObjectID
	for after := (bson.ObjectID{}); ; {
		page, err := x.IDsAfter(ctx, "app", "tenant_x", after, 40)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page...)
		if len(page) < 40 {
			break
		}
		after = page[len(page)-1]
	}
	if !slices.IsSortedFunc(want, func(a, b bson.ObjectID) int { return strings.Compare(a.Hex(), b.Hex()) }) {
		t.Fatal("ObjectIDs made in one process should be increasing")
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %d ids, want the %d ObjectIDs in order", len(got), len(want))
	}
	for _, db := range []string{"app", "nodb"} {
		none, err := x.IDsAfter(ctx, db, "no_such_collection", bson.ObjectID{}, 10)
		if err != nil || len(none) != 0 {
			t.Fatalf("a missing collection in %s: %v, %v", db, none, err)
		}
	}
	if _, err := x.IDsAfter(ctx, "../app", "tenant_x", bson.ObjectID{}, 10); err == nil {
		t.Fatal("a database name with a path was taken")
	}

	// The plan: a search of the _id index, no table scan, no sort.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "app.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var table string
	if err := db.QueryRow("SELECT table_name FROM _ferretdb_collections WHERE name = 'tenant_x'").Scan(&table); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		// "no such index" until the indexer's next pass.
		plan, err := queryPlan(db, idsAfterQuery(table, true), `"0"`, 20)
		if err == nil && strings.Contains(plan, "USING INDEX "+table+idIndexSuffix) && !strings.Contains(plan, "TEMP B-TREE") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ids are not read from the index: %s %v", plan, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIDsAfterDatabaseMadeAgain drops a database IDOrder has read and
// makes it again: the ids listed are the new file's, not the removed
// one's.
func TestIDsAfterDatabaseMadeAgain(t *testing.T) {
	dir, c := serveForTest(t)
	ctx := t.Context()
	x, err := NewIDOrder(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	for round := range 2 {
		id := bson.NewObjectID()
		if _, err := c.Database("app").Collection("tenant_x").InsertOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
			t.Fatal(err)
		}
		got, err := x.IDsAfter(ctx, "app", "tenant_x", bson.ObjectID{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, []bson.ObjectID{id}) {
			t.Fatalf("round %d: listed %v, want only %v", round, got, id)
		}
		if err := c.Database("app").Drop(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// queryPlan returns SQLite's plan for q, its steps joined by "; ".
func queryPlan(db *sql.DB, q string, args ...any) (string, error) {
	rows, err := db.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			return "", err
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "; "), rows.Err()
}
