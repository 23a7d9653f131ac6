package mongostore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenancy/tenancy"
)

// MoveTenantCollections moves every tenant collection (named with
// tenancy.TenantCollectionPrefix) of from into the store's tenant
// database, and returns how many it moved: for a store given
// WithTenantDatabase over data written without it. A server that renames
// across databases (MongoDB) moves a collection with renameCollection;
// on one that does not (FerretDB), or under WithoutRenameCollection, the
// store copies its documents and indexes, then drops it. A move cut short
// is finished by the next call: documents already copied are skipped. Call
// it before serving, while no other process writes to from's tenant
// collections. It moves nothing if from is the tenant database.
func (s *Store) MoveTenantCollections(ctx context.Context, from *mongo.Database) (int, error) {
	if from.Name() == s.tenants.Name() {
		return 0, nil
	}
	names, err := from.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return 0, translate(err, "list collections of %s", from.Name())
	}
	moved := 0
	for _, name := range names {
		if !strings.HasPrefix(name, tenancy.TenantCollectionPrefix) {
			continue
		}
		if err := s.moveCollection(ctx, from.Collection(name)); err != nil {
			return moved, err
		}
		moved++
	}
	return moved, nil
}

// moveCollection moves src to the collection of its name in the tenant
// database. A collection of that name there already is taken for a move
// cut short only if its metadata names the same organization; anything
// else there is left for an operator, and the move refused.
func (s *Store) moveCollection(ctx context.Context, src *mongo.Collection) error {
	dst := s.tenants.Collection(src.Name())
	exists, err := s.TenantCollectionExists(ctx, dst.Name())
	if err != nil {
		return err
	}
	if exists {
		from, err := collectionOwner(ctx, src)
		if err != nil {
			return fmt.Errorf("mongostore: move collection %s: %w", src.Name(), err)
		}
		to, err := collectionOwner(ctx, dst)
		if errors.Is(err, tenancy.ErrNotFound) {
			// A copy cut short before its first batch left it empty.
			n, cerr := dst.CountDocuments(ctx, bson.D{}, options.Count().SetLimit(1))
			if cerr == nil && n == 0 {
				err, to = nil, from
			}
		}
		if err != nil || to != from {
			return fmt.Errorf("mongostore: move collection %s: %s.%s exists and is not an earlier copy of it (its owner: %q, %v): %w",
				src.Name(), dst.Database().Name(), dst.Name(), to, err, tenancy.ErrConflict)
		}
	}
	if !s.noRename && !exists {
		err := s.db.Client().Database("admin").RunCommand(ctx, bson.D{
			{Key: "renameCollection", Value: src.Database().Name() + "." + src.Name()},
			{Key: "to", Value: dst.Database().Name() + "." + dst.Name()},
		}).Err()
		var se mongo.ServerError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &se) && (se.HasErrorCode(codeNotImplemented) || se.HasErrorCode(codeIllegalOperation) ||
			se.HasErrorCode(codeCommandNotFound) || se.HasErrorCode(codeCommandUnsupported) || se.HasErrorCode(codeNamespaceExists)):
			// Not across databases here, or an earlier copy was cut
			// short: copy.
		default:
			return translate(err, "move collection %s to %s", src.Name(), dst.Database().Name())
		}
	}
	if _, err := s.copyCollection(ctx, src, dst, nil); err != nil {
		return fmt.Errorf("mongostore: move collection %s: %w", src.Name(), err)
	}
	return translate(src.Drop(ctx), "drop moved collection %s", src.Name())
}
