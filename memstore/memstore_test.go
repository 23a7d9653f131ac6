package memstore_test

import (
	"testing"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/memstore"
	"github.com/tenancy/tenancy/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) tenancy.Store { return memstore.New() })
}
