package mongostore

import (
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/tenancy/tenancy"
)

// TestBusyDatabaseIsUnavailable: FerretDB over SQLite answers a write
// that found the database file locked past its busy timeout with an
// InternalError; the store reports it as unavailable (a 503 to try
// again), not as a failure of its own (a 500). The text is the one seen
// under a stream of creates at 9,800 organizations.
func TestBusyDatabaseIsUnavailable(t *testing.T) {
	busyErr := mongo.CommandError{Code: 1, Name: "InternalError", Message: "[msg_create.go:137 handler.(*Handler).MsgCreate] " +
		"[database.go:98 sqlite.(*database).CreateCollection] [registry.go:294 metadata.(*Registry).collectionCreate] database is locked (5) (SQLITE_BUSY)"}
	err := translate(busyErr, "create collection %s", "tenant_x")
	if !errors.Is(err, tenancy.ErrUnavailable) {
		t.Fatalf("a locked database: %v, want ErrUnavailable", err)
	}
	var ce mongo.CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("the cause is kept: %v", err)
	}
	other := translate(mongo.CommandError{Code: 1, Name: "InternalError", Message: "something else"}, "x")
	if errors.Is(other, tenancy.ErrUnavailable) {
		t.Fatalf("another internal error: %v", other)
	}
}
