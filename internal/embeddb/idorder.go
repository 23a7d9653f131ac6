package embeddb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// FerretDB v1.24 over SQLite serves a query by SQL only when its filter
// is exactly {_id: value}; for an _id range with a sort it reads, decodes
// and sorts the whole collection in Go (about 75 µs per 4 KB document).
// The _id index the indexer adds (idindex.go) holds the ids in order, so
// SQLite can answer "the next n ids after x" by reading n index entries.
// IDOrder asks it that, on the same files, and leaves reading the
// documents to the server, by _id.

// IDOrder lists the ids of a collection's documents in order from the
// SQLite files of an embedded database. It is safe for concurrent use.
type IDOrder struct {
	dir string

	mu  sync.Mutex
	dbs map[string]*idFile
}

// idFile is the connections to one database file, and the file they
// opened.
type idFile struct {
	db   *sql.DB
	info os.FileInfo
}

// NewIDOrder returns an IDOrder over the database files in dir, the
// directory given to Start. It opens a file on its first use.
func NewIDOrder(dir string) (*IDOrder, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded database directory: %w", err)
	}
	return &IDOrder{dir: dir, dbs: make(map[string]*idFile)}, nil
}

// Close closes the connections IDOrder opened.
func (x *IDOrder) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	var errs []error
	for name, f := range x.dbs {
		errs = append(errs, f.db.Close())
		delete(x.dbs, name)
	}
	return errors.Join(errs...)
}

// IDsAfter returns, in order, the ids of up to n documents of the
// collection coll of the database db whose _id is an ObjectID greater
// than after, leaving out the collection's metadata document (the one
// with metadata.org_id). A database or collection that does not exist
// has no ids. It reads one snapshot of the file.
func (x *IDOrder) IDsAfter(ctx context.Context, db, coll string, after bson.ObjectID, n int) ([]bson.ObjectID, error) {
	sdb, err := x.open(db)
	if sdb == nil || err != nil {
		return nil, err
	}
	tx, err := sdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("embedded database: ids of %s.%s: %w", db, coll, err)
	}
	defer tx.Rollback() //nolint:errcheck // a read-only transaction
	var table string
	err = tx.QueryRowContext(ctx, "SELECT table_name FROM _ferretdb_collections WHERE name = ?", coll).Scan(&table)
	if errors.Is(err, sql.ErrNoRows) || (err != nil && strings.Contains(err.Error(), "no such table")) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("embedded database: table of %s.%s: %w", db, coll, err)
	}
	rows, err := tx.QueryContext(ctx, idsAfterQuery(table, true), `"`+after.Hex()+`"`, n)
	if err != nil && strings.Contains(err.Error(), "no such index") {
		// A collection made since the indexer's last pass: small yet.
		rows, err = tx.QueryContext(ctx, idsAfterQuery(table, false), `"`+after.Hex()+`"`, n)
	}
	if err != nil {
		return nil, fmt.Errorf("embedded database: ids of %s.%s: %w", db, coll, err)
	}
	defer rows.Close()
	ids := make([]bson.ObjectID, 0, min(n, 100))
	for rows.Next() {
		var hex string
		if err := rows.Scan(&hex); err != nil {
			return nil, fmt.Errorf("embedded database: ids of %s.%s: %w", db, coll, err)
		}
		id, err := bson.ObjectIDFromHex(hex)
		if err != nil {
			return nil, fmt.Errorf("embedded database: ids of %s.%s: %q: %w", db, coll, hex, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("embedded database: ids of %s.%s: %w", db, coll, err)
	}
	return ids, nil
}

// open returns the connections to the file of database db, or nil if it
// does not exist. A file that was removed and made again (the database
// dropped and created anew) gets new connections.
func (x *IDOrder) open(db string) (*sql.DB, error) {
	if db == "" || strings.ContainsAny(db, `/\.`) || strings.ContainsRune(db, 0) {
		return nil, fmt.Errorf("embedded database: invalid database name %q", db)
	}
	file := filepath.Join(x.dir, db+".sqlite")
	info, err := os.Stat(file)
	x.mu.Lock()
	defer x.mu.Unlock()
	old := x.dbs[db]
	if old != nil && err == nil && os.SameFile(old.info, info) {
		return old.db, nil
	}
	if old != nil {
		_ = old.db.Close()
		delete(x.dbs, db)
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("embedded database: %w", err)
	}
	// query_only: this connection never writes; the busy timeout is
	// FerretDB's own. One connection: each holds its own parse of the
	// database's schema (about 25 MB beside 10,000 collections) and parses
	// it again after every create or drop; a page's ids take a
	// millisecond to read.
	sdb, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		return nil, fmt.Errorf("embedded database: open %s: %w", file, err)
	}
	sdb.SetMaxOpenConns(1)
	sdb.SetMaxIdleConns(1)
	x.dbs[db] = &idFile{db: sdb, info: info}
	return sdb, nil
}

// idsAfterQuery is IDsAfter's statement on table. Its expression is the
// indexed one (idindex.go), so that SQLite can walk the index from the
// given id; an ObjectID is stored as its hex string, whose JSON text
// sorts as its bytes. With indexed, it names the index: SQLite's planner,
// going by the statistics FerretDB's connections leave, may otherwise
// read and sort the whole table to find the first few ids.
func idsAfterQuery(table string, indexed bool) string {
	from := fmt.Sprintf("%q", table)
	if indexed {
		from += fmt.Sprintf(" INDEXED BY %q", table+idIndexSuffix)
	}
	return fmt.Sprintf(`SELECT _ferretdb_sjson->>'$._id' FROM %s
		WHERE _ferretdb_sjson->'$._id' > ?
		AND _ferretdb_sjson->>'$."$s".p._id.t' = 'objectId'
		AND _ferretdb_sjson->'$.metadata.org_id' IS NULL
		ORDER BY _ferretdb_sjson->'$._id' LIMIT ?`, from)
}
