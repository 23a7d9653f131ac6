package tenancy_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/mongostore"
	"github.com/tenancy/tenancy/mongotest"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

// commandLog records the commands a client sends.
type commandLog struct {
	mu    sync.Mutex
	names []string
}

func (l *commandLog) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.names = append(l.names, e.CommandName)
	}}
}

// during returns the commands sent while fn runs.
func (l *commandLog) during(fn func()) []string {
	l.mu.Lock()
	start := len(l.names)
	l.mu.Unlock()
	fn()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.names[start:]...)
}

// TestDatabaseRoundTrips counts the commands each hot operation sends to a
// real MongoDB-wire server, so a change that adds a round trip fails here.
func TestDatabaseRoundTrips(t *testing.T) {
	var log commandLog
	db := mongotest.NewDatabase(t, options.Client().SetMonitor(log.monitor()))
	store := mongostore.New(db)
	require.NoError(t, store.EnsureIndexes(t.Context()))
	m := newManager(t, store)
	org := createAcme(t, m)
	ctx := t.Context()

	cmds := log.during(func() {
		got, err := m.GetOrg(ctx, "Acme Corporation")
		require.NoError(t, err)
		assert.Equal(t, org.ID, got.ID)
	})
	assert.Equal(t, []string{"find"}, cmds, "GetOrg by name")

	cmds = log.during(func() {
		_, err := m.GetOrgByID(ctx, org.ID)
		require.NoError(t, err)
	})
	assert.Equal(t, []string{"find"}, cmds, "GetOrgByID")

	var tok *tenancy.Token
	stop := tenancy.CountHashCompares()
	cmds = log.during(func() {
		var err error
		tok, err = m.Login(ctx, "admin@acme.com", "MySecurePassword123")
		require.NoError(t, err)
	})
	assert.Equal(t, []string{"find"}, cmds, "Login")
	assert.Equal(t, int64(1), stop(), "Login does one bcrypt comparison")

	stop = tenancy.CountHashCompares()
	cmds = log.during(func() {
		_, err := m.Login(ctx, "nobody@acme.com", "MySecurePassword123")
		require.ErrorIs(t, err, tenancy.ErrUnauthenticated)
	})
	assert.Equal(t, []string{"find", "find", "update"}, cmds,
		"Login of an unknown email: the admin, the address's failures, then the count, as a wrong password costs")
	assert.Equal(t, int64(1), stop(), "an unknown email costs one bcrypt comparison too")

	cmds = log.during(func() {
		_, err := m.Login(ctx, "admin@acme.com", "WrongPassword123")
		require.ErrorIs(t, err, tenancy.ErrUnauthenticated)
	})
	assert.Equal(t, []string{"find", "update"}, cmds, "Login with a wrong password: the admin, then its failure count")
	cmds = log.during(func() {
		_, err := m.Login(ctx, "admin@acme.com", "MySecurePassword123")
		require.NoError(t, err)
	})
	assert.Equal(t, []string{"find", "update", "delete"}, cmds, "Login after a failure resets the count")

	cmds = log.during(func() {
		claims, err := m.VerifyToken(tok.AccessToken)
		require.NoError(t, err)
		assert.Equal(t, org.ID, claims.OrgID)
	})
	assert.Empty(t, cmds, "VerifyToken")

	cmds = log.during(func() {
		claims, err := m.Authorize(ctx, tok.AccessToken)
		require.NoError(t, err)
		assert.Equal(t, org.ID, claims.OrgID)
	})
	assert.Equal(t, []string{"find", "find"}, cmds, "Authorize: the admin and the revocation list, concurrently")

	cmds = log.during(func() {
		_, err := m.CreateOrg(ctx, tenancy.CreateOrgParams{Name: "Globex", AdminEmail: "admin@globex.com", AdminPassword: "MySecurePassword123"})
		require.NoError(t, err)
	})
	assert.Equal(t, []string{
		"find", "insert", "find", // the org's lock: read the last, insert ours, check it is the highest
		"insert",                              // reserve the name: the one uniqueness check
		"insert",                              // the org record, state creating
		"listCollections", "create", "insert", // the tenant collection, checked absent, with its metadata
		"insert", // the admin
		"update", // activate
		"update", // release the lock
	}, cmds, "CreateOrg")
	cmds = log.during(func() {
		_, err := m.RenameOrg(ctx, org.ID, "Acme Global Inc")
		require.NoError(t, err)
	})
	assert.Equal(t, []string{
		"find", "insert", "find", "delete", // the lock, pruning the org's earlier locks
		"find",             // the org record
		"insert",           // reserve the new name
		"listCollections",  // the target collection is absent
		"update",           // record the intent: renaming
		"renameCollection", // move the collection (metadata only)
		"aggregate",        // count its documents: documents_migrated
		"update",           // record completion
		"listCollections",  // no stray collection under the old name
		"delete",           // release the old name
		"update",           // release the lock
	}, cmds, "RenameOrg")
}
