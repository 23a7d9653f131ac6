package mongostore_test

import (
	"testing"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/mongostore"
	"github.com/tenancy/tenancy/mongotest"
	"github.com/tenancy/tenancy/storetest"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

func newStore(t *testing.T) *mongostore.Store {
	t.Helper()
	s := mongostore.New(mongotest.NewDatabase(t))
	if err := s.EnsureIndexes(t.Context()); err != nil {
		t.Fatalf("EnsureIndexes: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tenancy.Store { return newStore(t) })
}
