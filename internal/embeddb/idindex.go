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

// indexEvery is how often the indexer looks for new tables. A collection
// made since the last look is read by a scan until then, which costs
// little while it is new and small.
const indexEvery = 250 * time.Millisecond

// idIndexer adds the _id index to the tables of the SQLite files in dir.
type idIndexer struct {
	dir     string
	dbs     map[string]*sql.DB
	version map[string]int64
}

func newIDIndexer(dir string) *idIndexer {
	return &idIndexer{dir: dir, dbs: make(map[string]*sql.DB), version: make(map[string]int64)}
}

// run indexes every indexEvery until ctx ends.
func (x *idIndexer) run(ctx context.Context) {
	t := time.NewTicker(indexEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = x.pass(ctx) // the next pass tries again
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
func (x *idIndexer) pass(ctx context.Context) error {
	files, err := filepath.Glob(filepath.Join(x.dir, "*.sqlite"))
	if err != nil {
		return err
	}
	var first error
	for _, f := range files {
		if err := x.indexFile(ctx, f); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (x *idIndexer) indexFile(ctx context.Context, file string) error {
	db := x.dbs[file]
	if db == nil {
		var err error
		// The busy timeout is FerretDB's own: a write waits for the
		// other's to finish rather than fail.
		db, err = sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)")
		if err != nil {
			return fmt.Errorf("embedded database: open %s: %w", file, err)
		}
		db.SetMaxOpenConns(1)
		x.dbs[file] = db
	}
	var version int64
	if err := db.QueryRowContext(ctx, "PRAGMA schema_version").Scan(&version); err != nil {
		return fmt.Errorf("embedded database: schema version of %s: %w", file, err)
	}
	if version == x.version[file] {
		return nil
	}
	tables, err := strings1(ctx, db, "SELECT table_name FROM _ferretdb_collections")
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			// A file FerretDB has only begun to make.
			return nil
		}
		return fmt.Errorf("embedded database: tables of %s: %w", file, err)
	}
	indexes, err := strings1(ctx, db, "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE '%"+idIndexSuffix+"'")
	if err != nil {
		return fmt.Errorf("embedded database: indexes of %s: %w", file, err)
	}
	have := make(map[string]bool, len(indexes))
	for _, name := range indexes {
		have[name] = true
	}
	for _, table := range tables {
		if have[table+idIndexSuffix] {
			continue
		}
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, table+idIndexSuffix, table)
		if _, err := db.ExecContext(ctx, q); err != nil && !strings.Contains(err.Error(), "no such table") {
			// A table dropped meanwhile needs no index; any other
			// failure is tried again by the next pass.
			return fmt.Errorf("embedded database: index %s: %w", table, err)
		}
	}
	// The version read before listing: what was made since, and our
	// own indexes, bring the next pass back here once.
	x.version[file] = version
	return nil
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
