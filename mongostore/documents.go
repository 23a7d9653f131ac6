package mongostore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenancy/tenancy"
)

// notMetadata excludes a collection's metadata document.
var notMetadata = bson.E{Key: "metadata.org_id", Value: bson.D{{Key: "$exists", Value: false}}}

// AddTenantDocument implements tenancy.Store.
func (s *Store) AddTenantDocument(ctx context.Context, collection string, doc *tenancy.Document) error {
	id, err := objectID(doc.ID, "document id")
	if err != nil {
		return err
	}
	d := make(bson.D, 0, len(doc.Data)+1)
	d = append(d, bson.E{Key: "_id", Value: id})
	for k, v := range doc.Data {
		d = append(d, bson.E{Key: k, Value: v})
	}
	_, err = s.tenants.Collection(collection).InsertOne(ctx, d)
	return translate(err, "insert document %s into %s", doc.ID, collection)
}

// TenantDocument implements tenancy.Store. On FerretDB the filter is the
// _id alone, the only one it finds by index, and the metadata document is
// told apart here.
func (s *Store) TenantDocument(ctx context.Context, collection, id string) (*tenancy.Document, error) {
	oid, err := lookupID(id, "document id")
	if err != nil {
		return nil, err
	}
	filter := bson.D{{Key: "_id", Value: oid}, notMetadata}
	if s.byIDOnly.Load() {
		filter = bson.D{{Key: "_id", Value: oid}}
	}
	raw, err := s.tenants.Collection(collection).FindOne(ctx, filter).Raw()
	if err != nil {
		return nil, translate(err, "document %s in %s", id, collection)
	}
	if isMetadata(raw) {
		return nil, fmt.Errorf("mongostore: document %s in %s: %w", id, collection, tenancy.ErrNotFound)
	}
	return toDocument(raw)
}

// isMetadata reports whether raw is a tenant collection's metadata
// document.
func isMetadata(raw bson.Raw) bool {
	_, err := raw.LookupErr("metadata", "org_id")
	return err == nil
}

// TenantDocuments implements tenancy.Store. On MongoDB it is one find
// served by the _id index. FerretDB neither filters by an _id range nor
// sorts by index: it would read the whole collection, sort it in memory
// and send a page. So there the page's ids come from the IDOrder given
// to WithIDOrder, which reads an index (the embedded database's), or
// else from a stream of the ids alone, keeping the smallest limit of them;
// then each document is read by _id. Either way the memory a page takes
// is bounded by its limit; with an IDOrder its time is too, while the
// stream's grows with the collection (FerretDB decodes every document to
// filter it).
func (s *Store) TenantDocuments(ctx context.Context, collection, after string, limit int) ([]*tenancy.Document, error) {
	var from bson.ObjectID
	if after != "" {
		var err error
		if from, err = objectID(after, "document id"); err != nil {
			return nil, err
		}
	}
	if s.idOrder != nil {
		return s.pageByID(ctx, collection, from, limit, func(from bson.ObjectID, n int) ([]bson.ObjectID, error) {
			ids, err := s.idOrder.IDsAfter(ctx, s.tenants.Name(), collection, from, n)
			if err != nil {
				return nil, fmt.Errorf("mongostore: list documents of %s: %w", collection, err)
			}
			return ids, nil
		})
	}
	if s.byIDOnly.Load() {
		coll := s.tenants.Collection(collection)
		return s.pageByID(ctx, collection, from, limit, func(from bson.ObjectID, n int) ([]bson.ObjectID, error) {
			return s.smallestIDs(ctx, coll, from, n)
		})
	}
	cur, err := s.tenants.Collection(collection).Find(ctx,
		bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: from}}}, notMetadata},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, translate(err, "list documents of %s", collection)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	docs := make([]*tenancy.Document, 0, min(limit, 100))
	for cur.Next(ctx) {
		doc, err := toDocument(cur.Current)
		if err != nil {
			return nil, err
		}
		docs = append(docs, doc)
	}
	return docs, translate(cur.Err(), "list documents of %s", collection)
}

// scanBatch is how many ids a batch of the id stream holds.
const scanBatch = 1000

// pageByID returns the page of limit documents after from by taking the
// ids of the page from nextIDs (the n smallest after an id, in order) and
// then reading each document by _id. A document deleted between the two
// steps leaves a gap, and the page is chosen again after the last one
// read.
func (s *Store) pageByID(ctx context.Context, collection string, from bson.ObjectID, limit int,
	nextIDs func(from bson.ObjectID, n int) ([]bson.ObjectID, error),
) ([]*tenancy.Document, error) {
	coll := s.tenants.Collection(collection)
	docs := make([]*tenancy.Document, 0, min(limit, 100))
	for len(docs) < limit {
		want := limit - len(docs)
		ids, err := nextIDs(from, want)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			break
		}
		for _, id := range ids {
			raw, err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
			if errors.Is(err, mongo.ErrNoDocuments) {
				continue // deleted since the scan
			}
			if err != nil {
				return nil, translate(err, "list documents of %s", collection)
			}
			doc, err := toDocument(raw)
			if err != nil {
				return nil, err
			}
			docs = append(docs, doc)
		}
		from = ids[len(ids)-1]
		if len(ids) < want {
			break // the scan found no more
		}
	}
	return docs, nil
}

// smallestIDs returns, in order, the n smallest ids of documents after
// from in coll (not its metadata document), reading every id once.
func (s *Store) smallestIDs(ctx context.Context, coll *mongo.Collection, from bson.ObjectID, n int) ([]bson.ObjectID, error) {
	cur, err := coll.Find(ctx,
		bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: from}}}, notMetadata},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(scanBatch))
	if err != nil {
		return nil, translate(err, "list documents of %s", coll.Name())
	}
	defer cur.Close(context.WithoutCancel(ctx))
	// ids is sorted and holds at most n: a stream in insertion order
	// mostly appends or is refused at the last element.
	ids := make([]bson.ObjectID, 0, min(n, 100))
	for cur.Next(ctx) {
		id, ok := cur.Current.Lookup("_id").ObjectIDOK()
		if !ok {
			continue // not a document of the Tenant API
		}
		if len(ids) == n && bytes.Compare(id[:], ids[n-1][:]) >= 0 {
			continue
		}
		i, _ := slices.BinarySearchFunc(ids, id, func(a, b bson.ObjectID) int { return bytes.Compare(a[:], b[:]) })
		if len(ids) == n {
			ids = ids[:n-1]
		}
		ids = slices.Insert(ids, i, id)
	}
	return ids, translate(cur.Err(), "list documents of %s", coll.Name())
}

// DeleteTenantDocument implements tenancy.Store. On FerretDB the document
// is read by _id first, to keep the metadata document from being deleted
// by a filter FerretDB would find by a scan.
func (s *Store) DeleteTenantDocument(ctx context.Context, collection, id string) error {
	oid, err := lookupID(id, "document id")
	if err != nil {
		return err
	}
	filter := bson.D{{Key: "_id", Value: oid}, notMetadata}
	if s.byIDOnly.Load() {
		raw, err := s.tenants.Collection(collection).FindOne(ctx, bson.D{{Key: "_id", Value: oid}},
			options.FindOne().SetProjection(bson.D{{Key: "metadata.org_id", Value: 1}})).Raw()
		if err != nil {
			return translate(err, "delete document %s of %s", id, collection)
		}
		if isMetadata(raw) {
			return fmt.Errorf("mongostore: document %s of %s: %w", id, collection, tenancy.ErrNotFound)
		}
		filter = bson.D{{Key: "_id", Value: oid}}
	}
	res, err := s.tenants.Collection(collection).DeleteOne(ctx, filter)
	if err != nil {
		return translate(err, "delete document %s of %s", id, collection)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("mongostore: document %s of %s: %w", id, collection, tenancy.ErrNotFound)
	}
	return nil
}

// toDocument converts a stored document to a tenancy.Document.
func toDocument(raw bson.Raw) (*tenancy.Document, error) {
	elems, err := raw.Elements()
	if err != nil {
		return nil, fmt.Errorf("mongostore: read document: %w", err)
	}
	doc := &tenancy.Document{Data: make(map[string]any, len(elems))}
	for _, e := range elems {
		if e.Key() == "_id" {
			if oid, ok := e.Value().ObjectIDOK(); ok {
				doc.ID = oid.Hex()
			}
			continue
		}
		doc.Data[e.Key()] = fromRaw(e.Value())
	}
	return doc, nil
}

// fromRaw converts a BSON value to the Go types of tenancy.Document.Data.
// Types JSON has no counterpart for keep a faithful text form.
func fromRaw(v bson.RawValue) any {
	switch v.Type {
	case bson.TypeNull, bson.TypeUndefined:
		return nil
	case bson.TypeBoolean:
		return v.Boolean()
	case bson.TypeString:
		return v.StringValue()
	case bson.TypeInt32:
		return int64(v.Int32())
	case bson.TypeInt64:
		return v.Int64()
	case bson.TypeDouble:
		return v.Double()
	case bson.TypeDateTime:
		return v.Time().UTC()
	case bson.TypeObjectID:
		return v.ObjectID().Hex()
	case bson.TypeEmbeddedDocument:
		elems, _ := v.Document().Elements()
		m := make(map[string]any, len(elems))
		for _, e := range elems {
			m[e.Key()] = fromRaw(e.Value())
		}
		return m
	case bson.TypeArray:
		vals, _ := v.Array().Values()
		a := make([]any, len(vals))
		for i, e := range vals {
			a[i] = fromRaw(e)
		}
		return a
	}
	return v.String()
}
