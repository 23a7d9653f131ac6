package embeddb

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the driver FerretDB's SQLite backend uses too
)

// FerretDB v1.24's SQLite backend stores each document as JSON in one
// column and gives every collection a unique index on
// _ferretdb_sjson->"_id", but the statements it runs for a query, update
// or delete by _id filter on _ferretdb_sjson->'$._id'. SQLite uses an
// index on an expression only for that exact expression, so none of those
// statements uses the index: each reads and parses every document of the
// collection, and an update or delete by _id in a collection of 10,000
// organizations takes 50 ms where it should take one. The indexer adds an
// index on the expression the statements use to every collection's table.
// FerretDB knows nothing of it (it lists only its own indexes) and drops
// it with the table.

// idIndexSuffix ends the name of the index the indexer adds to a table.
const idIndexSuffix = "_id_path"

// indexEvery is how often, at most, the indexer looks for new tables. A
// collection made since the last look is read by a scan until then, which
// costs little while it is new and small.
const indexEvery = 250 * time.Millisecond

// indexShare bounds the indexer's time: after a pass that found the schema
// changed, it waits indexShare times as long as that pass took. Such a
// pass reads the whole schema again (SQLite parses every table's
// definition on a connection's first statement after any change), which
// at 10,000 collections takes tens of milliseconds, and a stream of
// creates changes the schema all the time.
const indexShare = 20

// idIndexer adds the _id index to the tables of the SQLite files in dir.
type idIndexer struct {
	dir     string
	dbs     map[string]*sql.DB
	version map[string]int64
}

func newIDIndexer(dir string) *idIndexer {
	return &idIndexer{dir: dir, dbs: make(map[string]*sql.DB), version: make(map[string]int64)}
}

// run indexes until ctx ends: every indexEvery while the schema stays as
// it is, and after a pass that read a changed schema, after indexShare
// times that pass's length.
func (x *idIndexer) run(ctx context.Context) {
	wait := indexEvery
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		start := time.Now()
		changed, _ := x.pass(ctx) // the next pass tries again
		wait = indexEvery
		if changed {
			wait = max(indexEvery, indexShare*time.Since(start))
		}
	}
}

// close closes the indexer's connections.
func (x *idIndexer) close() {
	for _, db := range x.dbs {
		db.Close()
	}
}

// pass adds the index to every table of every database file that lacks
// it. A file whose schema has not changed since the last pass costs one
// read of its header.
func (x *idIndexer) pass(ctx context.Context) (changed bool, err error) {
	files, err := filepath.Glob(filepath.Join(x.dir, "*.sqlite"))
	if err != nil {
		return false, err
	}
	var first error
	for _, f := range files {
		c, err := x.indexFile(ctx, f)
		changed = changed || c
		if err != nil && first == nil {
			first = err
		}
	}
	return changed, first
}

// indexFile indexes the tables of one database file, and reports whether
// its schema had changed since the last look.
func (x *idIndexer) indexFile(ctx context.Context, file string) (bool, error) {
	db := x.dbs[file]
	if db == nil {
		var err error
		// The busy timeout is FerretDB's own: a write waits for the
		// other's to finish rather than fail.
		db, err = sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)")
		if err != nil {
			return false, fmt.Errorf("embedded database: open %s: %w", file, err)
		}
		db.SetMaxOpenConns(1)
		x.dbs[file] = db
	}
	var version int64
	if err := db.QueryRowContext(ctx, "PRAGMA schema_version").Scan(&version); err != nil {
		return false, fmt.Errorf("embedded database: schema version of %s: %w", file, err)
	}
	if version == x.version[file] {
		return false, nil
	}
	tables, err := strings1(ctx, db, "SELECT table_name FROM _ferretdb_collections")
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			// A file FerretDB has only begun to make.
			return true, nil
		}
		return true, fmt.Errorf("embedded database: tables of %s: %w", file, err)
	}
	indexes, err := strings1(ctx, db, "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE '%"+idIndexSuffix+"'")
	if err != nil {
		return true, fmt.Errorf("embedded database: indexes of %s: %w", file, err)
	}
	have := make(map[string]bool, len(indexes))
	for _, name := range indexes {
		have[name] = true
	}
	var missing []string
	for _, table := range tables {
		if !have[table+idIndexSuffix] {
			missing = append(missing, table)
		}
	}
	if len(missing) > 0 {
		// One transaction: FerretDB's connections read the changed
		// schema once for all of them.
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return true, fmt.Errorf("embedded database: index tables of %s: %w", file, err)
		}
		for _, table := range missing {
			q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, table+idIndexSuffix, table)
			if _, err := tx.ExecContext(ctx, q); err != nil && !strings.Contains(err.Error(), "no such table") {
				// A table dropped meanwhile needs no index; any other
				// failure is tried again by the next pass.
				_ = tx.Rollback()
				return true, fmt.Errorf("embedded database: index %s: %w", table, err)
			}
		}
		if err := tx.Commit(); err != nil {
			return true, fmt.Errorf("embedded database: index tables of %s: %w", file, err)
		}
	}
	// The version read before listing: what was made since, and our
	// own indexes, bring the next pass back here once.
	x.version[file] = version
	return true, nil
}

// strings1 returns the first column of the rows of query q.
func strings1(ctx context.Context, db *sql.DB, q string) ([]string, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
