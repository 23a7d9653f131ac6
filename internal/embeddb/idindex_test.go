package embeddb

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// plans returns SQLite's query plans for the statements FerretDB runs to
// find, update and delete a document of collection by _id.
func plans(t *testing.T, dir, collection string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "app.sqlite")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var table string
	if err := db.QueryRow("SELECT table_name FROM _ferretdb_collections WHERE name = ?", collection).Scan(&table); err != nil {
		t.Fatal(err)
	}
	// As in FerretDB's backends/sqlite/collection.go.
	stmts := []string{
		fmt.Sprintf(`SELECT _ferretdb_sjson FROM %q WHERE _ferretdb_sjson->'$._id' = ?`, table),
		fmt.Sprintf(`UPDATE %q SET _ferretdb_sjson = ? WHERE _ferretdb_sjson->'$._id' = ?`, table),
		fmt.Sprintf(`DELETE FROM %q WHERE _ferretdb_sjson->'$._id' IN (?)`, table),
	}
	var out []string
	for _, q := range stmts {
		rows, err := db.Query("EXPLAIN QUERY PLAN "+q, "x", "y")
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		out = append(out, strings.Join(plan, "; "))
	}
	return out
}

func usesIndex(plans []string) bool {
	for _, p := range plans {
		if !strings.Contains(p, "USING INDEX") || !strings.Contains(p, idIndexSuffix) {
			return false
		}
	}
	return true
}

// TestLookupsByIDUseAnIndex checks that FerretDB's statements for a find,
// update and delete by _id search an index instead of reading every
// document: for a collection made while the server runs (within a few
// passes of the indexer), and for one whose table lost the index while
// the server was stopped (before Start returns).
func TestLookupsByIDUseAnIndex(t *testing.T) {
	dir := t.TempDir()
	uri, stop, err := Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Database("app").Collection("orgs").InsertOne(ctx, bson.D{{Key: "n", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !usesIndex(plans(t, dir, "orgs")) {
		if time.Now().After(deadline) {
			t.Fatalf("a new collection's lookups by _id still scan: %q", plans(t, dir, "orgs"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Still answers as before.
	var doc bson.M
	if err := c.Database("app").Collection("orgs").FindOne(ctx, bson.D{{Key: "n", Value: 1}}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Database("app").Collection("orgs").DeleteOne(ctx, bson.D{{Key: "_id", Value: doc["_id"]}}); err != nil {
		t.Fatal(err)
	}
	_ = c.Disconnect(context.Background())
	stop()

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "app.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	var table string
	if err := db.QueryRow("SELECT table_name FROM _ferretdb_collections WHERE name = 'orgs'").Scan(&table); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf("DROP INDEX %q", table+idIndexSuffix)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if usesIndex(plans(t, dir, "orgs")) {
		t.Fatal("the index is still there")
	}
	_, stop, err = Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if p := plans(t, dir, "orgs"); !usesIndex(p) {
		t.Fatalf("after a restart lookups by _id scan: %q", p)
	}
}
