package mongostore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

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
// database.
func (s *Store) moveCollection(ctx context.Context, src *mongo.Collection) error {
	dst := s.tenants.Collection(src.Name())
	if !s.noRename {
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
