package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tenancy/tenancy"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// CreateTenantCollection implements tenancy.Store. It lists the
// collection first: since MongoDB 7.0 (and on mongos) create answers OK for
// a collection that exists, which would hand an existing collection and its
// data to a new organization.
func (s *Store) CreateTenantCollection(ctx context.Context, name string, owner tenancy.OrgID, createdAt time.Time) error {
	oid, err := objectID(string(owner), "organization id")
	if err != nil {
		return err
	}
	exists, err := s.TenantCollectionExists(ctx, name)
	if err != nil {
		return err
	}
	if exists {
		return fmt.Errorf("mongostore: create collection %s: exists: %w", name, tenancy.ErrConflict)
	}
	if err := s.tenants.CreateCollection(ctx, name); err != nil {
		return translate(err, "create collection %s", name)
	}
	_, err = s.tenants.Collection(name).InsertOne(ctx, bson.D{{Key: "metadata", Value: bson.D{
		{Key: "created_at", Value: createdAt},
		{Key: "schema_version", Value: "1.0"},
		{Key: "org_id", Value: oid},
	}}})
	return translate(err, "write metadata of %s", name)
}

// TenantCollectionOwner implements tenancy.Store.
func (s *Store) TenantCollectionOwner(ctx context.Context, name string) (tenancy.OrgID, error) {
	return collectionOwner(ctx, s.tenants.Collection(name))
}

// collectionOwner is TenantCollectionOwner of coll, in any database.
func collectionOwner(ctx context.Context, coll *mongo.Collection) (tenancy.OrgID, error) {
	name := coll.Name()
	var doc struct {
		Metadata struct {
			OrgID *bson.ObjectID `bson:"org_id"`
		} `bson:"metadata"`
	}
	err := coll.FindOne(ctx, bson.D{{Key: "metadata.org_id", Value: bson.D{{Key: "$exists", Value: true}}}}).Decode(&doc)
	if err != nil {
		return "", translate(err, "owner of collection %s", name)
	}
	if doc.Metadata.OrgID == nil {
		return "", fmt.Errorf("mongostore: owner of collection %s: %w", name, tenancy.ErrNotFound)
	}
	return tenancy.OrgID(doc.Metadata.OrgID.Hex()), nil
}

// TenantCollectionExists implements tenancy.Store. On FerretDB, whose
// listCollections builds and filters a document for every collection (5 ms
// at 10,000 organizations), it lists the collection's indexes instead: a
// collection always has its _id index, and a missing one has none (the
// server's NamespaceNotFound, which the driver turns into no indexes).
func (s *Store) TenantCollectionExists(ctx context.Context, name string) (bool, error) {
	if s.byIDOnly.Load() {
		cur, err := s.tenants.Collection(name).Indexes().List(ctx)
		if err != nil {
			err = translate(err, "list indexes of collection %s", name)
			if errors.Is(err, tenancy.ErrNotFound) {
				return false, nil
			}
			return false, err
		}
		defer cur.Close(context.WithoutCancel(ctx))
		// The driver answers NamespaceNotFound with no indexes.
		found := cur.Next(ctx)
		return found, translate(cur.Err(), "list indexes of collection %s", name)
	}
	names, err := s.tenants.ListCollectionNames(ctx, bson.D{{Key: "name", Value: name}})
	if err != nil {
		return false, translate(err, "list collection %s", name)
	}
	return len(names) > 0, nil
}

// CountTenantDocuments implements tenancy.Store with countDocuments, an
// exact count, or with the $collStats count under WithCollStatsCount.
func (s *Store) CountTenantDocuments(ctx context.Context, name string) (int64, error) {
	if !s.statsCount {
		n, err := s.tenants.Collection(name).CountDocuments(ctx, bson.D{})
		return n, translate(err, "count documents of %s", name)
	}
	cur, err := s.tenants.Collection(name).Aggregate(ctx, bson.A{bson.D{{Key: "$collStats", Value: bson.D{{Key: "count", Value: bson.D{}}}}}})
	if err != nil {
		err = translate(err, "count documents of %s", name)
		if errors.Is(err, tenancy.ErrNotFound) {
			return 0, nil
		}
		return 0, err
	}
	defer cur.Close(context.WithoutCancel(ctx))
	var stats struct {
		Count int64 `bson:"count"`
	}
	if cur.Next(ctx) {
		if err := cur.Decode(&stats); err != nil {
			return 0, fmt.Errorf("mongostore: count documents of %s: %w", name, err)
		}
	}
	return stats.Count, translate(cur.Err(), "count documents of %s", name)
}

// RenameTenantCollection implements tenancy.Store. It uses renameCollection,
// which moves the collection's metadata, not its documents. A server that
// refuses to rename (or a store made WithoutRenameCollection) gives an
// error matching errors.ErrUnsupported.
func (s *Store) RenameTenantCollection(ctx context.Context, from, to string) error {
	if s.noRename {
		return fmt.Errorf("mongostore: rename collection %s: disabled by WithoutRenameCollection: %w", from, errors.ErrUnsupported)
	}
	db := s.tenants.Name()
	err := s.tenants.Client().Database("admin").RunCommand(ctx, bson.D{
		{Key: "renameCollection", Value: db + "." + from},
		{Key: "to", Value: db + "." + to},
	}).Err()
	var se mongo.ServerError
	if errors.As(err, &se) && (se.HasErrorCode(codeIllegalOperation) || se.HasErrorCode(codeCommandNotFound) || se.HasErrorCode(codeCommandUnsupported)) {
		return fmt.Errorf("mongostore: rename collection %s to %s: %w: %w", from, to, errors.ErrUnsupported, err)
	}
	return translate(err, "rename collection %s to %s", from, to)
}

// DropTenantCollection implements tenancy.Store.
func (s *Store) DropTenantCollection(ctx context.Context, name string) error {
	return translate(s.tenants.Collection(name).Drop(ctx), "drop collection %s", name)
}

// CopyTenantDocuments implements tenancy.Store. It first creates to with
// the indexes of from (renameCollection keeps them too), then reads from
// in natural order through one cursor and inserts unordered batches of
// raw documents, so memory holds one batch, whatever the collection's size.
func (s *Store) CopyTenantDocuments(ctx context.Context, from, to string, progress func(int64)) (int64, error) {
	return s.copyCollection(ctx, s.tenants.Collection(from), s.tenants.Collection(to), progress)
}

// copyCollection is CopyTenantDocuments from src to dst, which may be in
// another database.
func (s *Store) copyCollection(ctx context.Context, src, dst *mongo.Collection, progress func(int64)) (int64, error) {
	if err := dst.Database().CreateCollection(ctx, dst.Name()); err != nil {
		var se mongo.ServerError
		if !errors.As(err, &se) || !se.HasErrorCode(codeNamespaceExists) {
			return 0, translate(err, "create collection %s", dst.Name())
		}
	}
	if err := copyIndexes(ctx, src, dst); err != nil {
		return 0, err
	}
	cur, err := src.Find(ctx, bson.D{}, options.Find().SetBatchSize(s.batchSize))
	if err != nil {
		return 0, translate(err, "read collection %s", src.Name())
	}
	defer cur.Close(context.WithoutCancel(ctx))
	batch := make([]any, 0, s.batchSize)
	var read int64
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := dst.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false))
		if err != nil && !onlyDuplicates(err) {
			return translate(err, "copy into collection %s", dst.Name())
		}
		read += int64(len(batch))
		batch = batch[:0]
		if progress != nil {
			progress(read)
		}
		return nil
	}
	for cur.Next(ctx) {
		// The cursor reuses its buffer: keep a copy of each document.
		batch = append(batch, bson.Raw(append([]byte(nil), cur.Current...)))
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return read, err
			}
		}
	}
	if err := cur.Err(); err != nil {
		return read, translate(err, "read collection %s", src.Name())
	}
	err = flush()
	return read, err
}

// copyIndexes creates on dst the indexes of src other than _id's. An
// index that exists already (an interrupted copy made it) is left alone.
func copyIndexes(ctx context.Context, src, dst *mongo.Collection) error {
	cur, err := src.Indexes().List(ctx)
	if err != nil {
		err = translate(err, "list indexes of %s", src.Name())
		if errors.Is(err, tenancy.ErrNotFound) {
			return nil
		}
		return err
	}
	var specs []bson.D
	if err := cur.All(ctx, &specs); err != nil {
		return translate(err, "list indexes of %s", src.Name())
	}
	var indexes bson.A
	for _, spec := range specs {
		keep := make(bson.D, 0, len(spec))
		name := ""
		for _, e := range spec {
			switch e.Key {
			case "v", "ns":
				continue
			case "name":
				name, _ = e.Value.(string)
			}
			keep = append(keep, e)
		}
		if name != "_id_" {
			indexes = append(indexes, keep)
		}
	}
	if len(indexes) == 0 {
		return nil
	}
	err = dst.Database().RunCommand(ctx, bson.D{{Key: "createIndexes", Value: dst.Name()}, {Key: "indexes", Value: indexes}}).Err()
	return translate(err, "create indexes of %s on %s", src.Name(), dst.Name())
}

// onlyDuplicates reports whether every write error of err is a duplicate
// key: documents an earlier, interrupted copy already inserted.
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 {
			return false
		}
	}
	return true
}
