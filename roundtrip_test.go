package tenancy_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/mongostore"
	"github.com/tenancy/tenancy/mongotest"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

// commandLog records the commands a client sends.
type commandLog struct {
	mu       sync.Mutex
	names    []string
	commands []command
	pending  map[int64]int // request id → index in commands
}

// command is one command sent: its name, collection, the filters it
// selects documents by, and how many documents its reply returned.
type command struct {
	name, collection string
	filters          []bson.Raw
	returned         int
}

func (l *commandLog) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.names = append(l.names, e.CommandName)
			c := command{name: e.CommandName}
			if v, err := e.Command.LookupErr(e.CommandName); err == nil && v.Type == bson.TypeString {
				c.collection = v.StringValue()
			}
			c.filters = commandFilters(e.Command)
			if l.pending == nil {
				l.pending = map[int64]int{}
			}
			l.pending[e.RequestID] = len(l.commands)
			l.commands = append(l.commands, c)
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
			l.mu.Lock()
			defer l.mu.Unlock()
			i, ok := l.pending[e.RequestID]
			if !ok {
				return
			}
			delete(l.pending, e.RequestID)
			if batch, err := e.Reply.LookupErr("cursor", "firstBatch"); err == nil {
				vals, _ := batch.Array().Values()
				l.commands[i].returned = len(vals)
			}
		},
	}
}

// commandFilters returns the filters of a find, update, delete or
// findAndModify command.
func commandFilters(cmd bson.Raw) []bson.Raw {
	var out []bson.Raw
	for _, path := range [][]string{{"filter"}, {"query"}} {
		if v, err := cmd.LookupErr(path...); err == nil {
			out = append(out, v.Document())
		}
	}
	for _, list := range []string{"updates", "deletes"} {
		v, err := cmd.LookupErr(list)
		if err != nil {
			continue
		}
		vals, _ := v.Array().Values()
		for _, e := range vals {
			if q, err := e.Document().LookupErr("q"); err == nil {
				out = append(out, q.Document())
			}
		}
	}
	return out
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

// commandsDuring returns the commands sent while fn runs, with their
// filters and the documents they returned.
func (l *commandLog) commandsDuring(fn func()) []command {
	l.mu.Lock()
	start := len(l.commands)
	l.mu.Unlock()
	fn()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]command(nil), l.commands[start:]...)
}

// onlyByID reports the first filter of cmds on a collection shared by
// all organizations that selects documents by anything but exactly one
// _id, which FerretDB over SQLite serves by reading the whole collection;
// "" if there is none. (Tenant collections are one organization's own;
// the catalog is filtered by collection name; the journal holds only what
// is in flight and is read whole.)
func onlyByID(cmds []command) string {
	for _, c := range cmds {
		// The journal and the event marks are read whole: each is
		// empty when nothing is pending.
		if c.name == "listCollections" || strings.HasPrefix(c.collection, tenancy.TenantCollectionPrefix) ||
			c.collection == mongostore.OperationsCollection || c.collection == mongostore.EventMarksCollection {
			continue
		}
		for _, f := range c.filters {
			elems, _ := f.Elements()
			if len(elems) != 1 || elems[0].Key() != "_id" {
				return fmt.Sprintf("%s on %s filters by %v", c.name, c.collection, f)
			}
			switch elems[0].Value().Type {
			case bson.TypeString, bson.TypeObjectID:
			default:
				return fmt.Sprintf("%s on %s filters by %v", c.name, c.collection, f)
			}
		}
	}
	return ""
}

// byIDEverywhere is onlyByID for every collection, tenant ones too.
func byIDEverywhere(cmds []command) string {
	for _, c := range cmds {
		for _, f := range c.filters {
			elems, _ := f.Elements()
			if len(elems) != 1 || elems[0].Key() != "_id" {
				return fmt.Sprintf("%s on %s filters by %v", c.name, c.collection, f)
			}
		}
	}
	return ""
}

// TestDatabaseRoundTrips counts the commands each hot operation sends to a
// real MongoDB-wire server, so a change that adds a round trip fails here.
func TestDatabaseRoundTrips(t *testing.T) {
	t.Run("cached", roundTripsCached)
	var log commandLog
	db := mongotest.NewDatabase(t, options.Client().SetMonitor(log.monitor()))
	store := newStore(t, db)
	require.NoError(t, store.EnsureIndexes(t.Context()))
	m := newManager(t, store)
	org := createAcme(t, m)
	ctx := t.Context()
	// On FerretDB a write that would filter on more than _id reads by _id
	// first, so as not to scan the collection.
	checked := func(cmd string) []string { return []string{cmd} }
	if isFerretDB(t, db) {
		checked = func(cmd string) []string { return []string{"find", cmd} }
	}

	// An event: its organization's last number (a hint), the event at the
	// next, the hint moved.
	event := []string{"find", "insert", "update"}
	// An event written outside its organization's lock (a login, a
	// logout, a password change), then a look that the organization is
	// still there: one that lands after a deletion marks it.
	unlockedEvent := concat(event, "find")

	// By name: on MongoDB one read by the unique identifier index; on
	// FerretDB two by _id, the name's reservation and the organization.
	byName, ferret := []string{"find"}, isFerretDB(t, db)
	if ferret {
		byName = []string{"find", "find"}
	}
	cmdsByName := log.commandsDuring(func() {
		got, err := m.OrgByName(ctx, "Acme Corporation")
		require.NoError(t, err)
		assert.Equal(t, org.ID, got.ID)
	})
	assert.Equal(t, byName, names(cmdsByName), "OrgByName by name")
	if ferret {
		assert.Empty(t, onlyByID(cmdsByName), "OrgByName by name reads by _id only")
	}
	cmdsByName = log.commandsDuring(func() {
		_, err := m.OrgByName(ctx, "No Such Org")
		require.ErrorIs(t, err, tenancy.ErrNotFound)
	})
	assert.Equal(t, []string{"find"}, names(cmdsByName), "OrgByName of an unknown name")
	if ferret {
		assert.Empty(t, onlyByID(cmdsByName), "OrgByName of an unknown name reads by _id only")
	}

	cmdsByID := log.commandsDuring(func() {
		_, err := m.OrgByID(ctx, org.ID)
		require.NoError(t, err)
	})
	assert.Equal(t, []string{"find"}, names(cmdsByID), "OrgByID")
	assert.Empty(t, onlyByID(cmdsByID), "OrgByID reads by _id")

	// An admin by email: on FerretDB the email's pointer, then the admin.
	byEmail := []string{"find"}
	if ferret {
		byEmail = []string{"find", "find"}
	}
	checkByID := func(what string, cmds []command) {
		t.Helper()
		if ferret {
			assert.Empty(t, onlyByID(cmds), what+" reads and writes by _id only")
		}
	}
	var tok *tenancy.Token
	stop := tenancy.CountHashCompares()
	login := log.commandsDuring(func() {
		var err error
		tok, err = m.Login(ctx, "admin@acme.com", "MySecurePassword123")
		require.NoError(t, err)
	})
	assert.Equal(t, concat(byEmail, "find", "find", unlockedEvent), names(login), "Login: the admin, then its organization, which must not be being deleted, and the membership, which gives the role; then its event")
	checkByID("Login", login)
	assert.Equal(t, int64(1), stop(), "Login does one bcrypt comparison")

	stop = tenancy.CountHashCompares()
	login = log.commandsDuring(func() {
		_, err := m.Login(ctx, "nobody@acme.com", "MySecurePassword123")
		require.ErrorIs(t, err, tenancy.ErrUnauthenticated)
	})
	assert.Equal(t, []string{"find", "find", "update"}, names(login),
		"Login of an unknown email: the admin, the address's failures, then the count, as a wrong password costs")
	checkByID("Login of an unknown email", login)
	assert.Equal(t, int64(1), stop(), "an unknown email costs one bcrypt comparison too")

	login = log.commandsDuring(func() {
		_, err := m.Login(ctx, "admin@acme.com", "WrongPassword123")
		require.ErrorIs(t, err, tenancy.ErrUnauthenticated)
	})
	// The event of the failure is recorded aside, perhaps after the
	// answer: wait for it, and leave it out.
	require.Eventually(t, func() bool {
		evs, err := store.Events(ctx, org.ID, 0, 100)
		require.NoError(t, err)
		return slices.ContainsFunc(evs, func(ev *tenancy.Event) bool { return ev.Type == tenancy.EventAdminLoginFailed })
	}, 5*time.Second, 5*time.Millisecond)
	login = slices.DeleteFunc(login, func(c command) bool {
		return c.collection == mongostore.EventsCollection || c.collection == mongostore.EventHeadsCollection
	})
	assert.Equal(t, concat(byEmail, byEmail[1:], "update"), names(login), "Login with a wrong password: the admin, then its failure count")
	checkByID("Login with a wrong password", login)
	login = log.commandsDuring(func() {
		_, err := m.Login(ctx, "admin@acme.com", "MySecurePassword123")
		require.NoError(t, err)
	})
	assert.Equal(t, concat(byEmail, byEmail[1:], "update", "delete", "find", "find", unlockedEvent), names(login), "Login after a failure resets the count")
	checkByID("Login after a failure", login)

	var cmds []string
	cmds = log.during(func() {
		claims, err := m.VerifyToken(tok.AccessToken)
		require.NoError(t, err)
		assert.Equal(t, org.ID, claims.OrgID)
	})
	assert.Empty(t, cmds, "VerifyToken")

	authz := log.commandsDuring(func() {
		claims, err := m.AuthenticateToken(ctx, tok.AccessToken)
		require.NoError(t, err)
		assert.Equal(t, org.ID, claims.OrgID)
	})
	assert.Equal(t, []string{"find", "find", "find", "find"}, names(authz), "AuthenticateToken: the admin, its organization, its membership and the revocation list, concurrently")
	assert.Empty(t, onlyByID(authz), "AuthenticateToken reads by _id")

	// Tenant documents: the organization before and after each call, and
	// the document by _id alone (on FerretDB the metadata document is told
	// apart after reading; a delete reads first for it).
	tenant := m.Tenant(org.ID)
	var doc *tenancy.Document
	tenantCmds := log.commandsDuring(func() {
		var err error
		doc, err = tenant.Insert(ctx, map[string]any{"n": 1})
		require.NoError(t, err)
	})
	assert.Equal(t, []string{"find", "insert", "find"}, names(tenantCmds), "Tenant.Insert")
	tenantCmds = log.commandsDuring(func() {
		_, err := tenant.Get(ctx, doc.ID)
		require.NoError(t, err)
	})
	assert.Equal(t, []string{"find", "find", "find"}, names(tenantCmds), "Tenant.Get")
	if ferret {
		assert.Empty(t, byIDEverywhere(tenantCmds), "Tenant.Get reads by _id")
	}
	tenantCmds = log.commandsDuring(func() {
		require.NoError(t, tenant.Delete(ctx, doc.ID))
	})
	if ferret {
		assert.Equal(t, []string{"find", "find", "delete", "find"}, names(tenantCmds), "Tenant.Delete")
		assert.Empty(t, byIDEverywhere(tenantCmds), "Tenant.Delete reads and deletes by _id")
	} else {
		assert.Equal(t, []string{"find", "delete", "find"}, names(tenantCmds), "Tenant.Delete")
	}

	// Whether a collection exists: on FerretDB, whose listCollections
	// reads every collection, its indexes.
	exists := "listCollections"
	if ferret {
		exists = "listIndexes"
	}
	createCmds := log.commandsDuring(func() {
		_, err := m.CreateOrg(ctx, tenancy.CreateOrgParams{Name: "Globex", AdminEmail: "admin@globex.com", AdminPassword: "MySecurePassword123"})
		require.NoError(t, err)
	})
	assert.Equal(t, concat(
		"find",                             // is the name an active organization's? (a 409 needs no bcrypt)
		"find", "insert", "find", "update", // the org's lock: read the marker, claim the next number, check the marker, write it
		"update",                   // the journal entry of the operation
		"insert",                   // reserve the name: the one uniqueness check
		"insert",                   // the org record, state creating
		exists, "create", "insert", // the tenant collection, checked absent, with its metadata
		"insert",           // the admin
		"update",           // its email's pointer
		"update", "insert", // its membership as owner: on the account's list, then the record
		checked("update"), // activate
		event,             // organization.created
		"delete",          // clear the journal entry
		"find", "update",  // release the lock
	), names(createCmds), "CreateOrg")
	checkByID("CreateOrg", createCmds)
	renameCmds := log.commandsDuring(func() {
		_, err := m.RenameOrg(ctx, org.ID, "Acme Global Inc")
		require.NoError(t, err)
	})
	assert.Equal(t, concat(
		"find", "insert", "find", "update", "delete", // the lock, pruning the previous claim
		"find",             // the journal: nothing a dead process left
		"find",             // the org record
		"update",           // the journal entry
		"insert",           // reserve the new name
		exists,             // the target collection is absent
		checked("update"),  // record the intent: renaming
		"renameCollection", // move the collection (metadata only)
		"aggregate",        // count its documents: documents_migrated
		checked("update"),  // record completion
		exists,             // no stray collection under the old name
		checked("delete"),  // release the old name
		event,              // organization.renamed
		"delete",           // clear the journal entry
		"find", "update",   // release the lock
	), names(renameCmds), "RenameOrg")
	checkByID("RenameOrg", renameCmds)

	// The account's own calls: each write by _id.
	claims, err := m.VerifyToken(tok.AccessToken)
	require.NoError(t, err)
	var next *tenancy.Token
	pwCmds := log.commandsDuring(func() {
		next, err = m.ChangePassword(ctx, claims, "MySecurePassword123", "MyNewSecurePassword456")
		require.NoError(t, err)
	})
	assert.Equal(t, concat("find", "findAndModify", unlockedEvent), names(pwCmds), "ChangePassword: the admin, then its hash and token generation, then its event")
	checkByID("ChangePassword", pwCmds)
	claims, err = m.VerifyToken(next.AccessToken)
	require.NoError(t, err)
	logoutCmds := log.commandsDuring(func() { require.NoError(t, m.Logout(ctx, claims)) })
	assert.Equal(t, concat(unlockedEvent, "insert"), names(logoutCmds), "Logout: its event, then the token's revocation, keyed by its id")
	checkByID("Logout", logoutCmds)
	deleteCmds := log.commandsDuring(func() { require.NoError(t, m.DeleteOrg(ctx, org.ID)) })
	if ferret {
		assert.Equal(t, concat(
			"find", "insert", "find", "update", "delete", // the lock, pruning the previous claim
			"find",           // the journal: nothing a dead process left
			"find",           // the org record
			"update",         // the journal entry
			"find", "update", // record the deletion
			"find", "insert", "find", "update", // the owner's account's lock
			"find", "find", // the account's memberships: its list, then each
			"find",             // the account
			"delete",           // the account, a member nowhere else
			"delete", "update", // its membership, then off the account's list
			"find", "update", // release the account's lock
			"find",         // the other members: none
			"find",         // the invitations: none
			"find", "drop", // the tenant collection, after reading its owner's stamp
			"find", "delete", // release the name
			"delete", // the org record
			// organization.deleted, marking its organization before and
			// after: without delivery, recovery deletes the events
			// later, away from the request
			"update", event, "update",
			"delete",         // clear the journal entry
			"find", "update", // release the lock
		), names(deleteCmds), "DeleteOrg")
	}
	// Listing the members and the invitations of the organization reads
	// every membership and invitation on FerretDB: a cost of deletions
	// only, not of any request.
	checkByID("DeleteOrg", slices.DeleteFunc(deleteCmds, func(c command) bool {
		return c.name == "find" && (c.collection == mongostore.MembersCollection || c.collection == mongostore.InvitationsCollection) &&
			len(c.filters) == 1 && c.filters[0].Lookup("org_id").Type == bson.TypeString
	}))
}

// names returns the names of cmds.
func names(cmds []command) []string {
	out := make([]string, len(cmds))
	for i, c := range cmds {
		out[i] = c.name
	}
	return out
}

// concat flattens command names and lists of them.
func concat(parts ...any) []string {
	var out []string
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			out = append(out, p)
		case []string:
			out = append(out, p...)
		}
	}
	return out
}

// isFerretDB reports whether db is served by FerretDB.
func isFerretDB(t *testing.T, db *mongo.Database) bool {
	t.Helper()
	var info bson.M
	require.NoError(t, db.RunCommand(t.Context(), bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info))
	_, ok := info["ferretdbVersion"]
	return ok
}

// TestRecoveryTickAtScale runs recovery passes on a database holding
// 10,000 organization records: with nothing pending a pass reads the
// journal alone and gets nothing back, and settling an interrupted
// operation reads and writes by _id only, whatever the number of
// organizations.
func TestRecoveryTickAtScale(t *testing.T) {
	t.Parallel()
	var log commandLog
	db := mongotest.NewDatabase(t, options.Client().SetMonitor(log.monitor()))
	store := newStore(t, db)
	require.NoError(t, store.EnsureIndexes(t.Context()))
	const orgs = 10_000
	at := time.Now().Add(-time.Hour).UTC()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < orgs; i += 8 {
				id := fmt.Sprintf("org-%05d", i)
				o := &tenancy.Org{
					ID: tenancy.OrgID(fmt.Sprintf("%024x", i+1)), Name: id, Identifier: id, TenantCollection: tenancy.TenantCollection(id),
					AdminID: tenancy.AdminID(fmt.Sprintf("%024x", orgs+i+1)), AdminEmail: id + "@scale.test",
					State: tenancy.OrgActive, CreatedAt: at, ModifiedAt: at,
				}
				if i%10 == 0 {
					// Unfinished states without a journal entry cost no
					// pending pass anything either.
					o.State = tenancy.OrgCreating
				}
				if err := store.CreateOrg(t.Context(), o); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	require.NoError(t, <-errs)

	m := newManager(t, store)
	cmds := log.commandsDuring(func() {
		rep, err := m.RecoverPending(t.Context())
		require.NoError(t, err)
		assert.Equal(t, tenancy.RecoveryReport{}, rep)
	})
	// The journal, and the marks of deleted organizations whose events
	// are to go: both empty when nothing is pending.
	require.Len(t, cmds, 2, "a pass with nothing pending: %v", cmds)
	for i, coll := range []string{mongostore.OperationsCollection, mongostore.EventMarksCollection} {
		assert.Equal(t, "find", cmds[i].name)
		assert.Equal(t, coll, cmds[i].collection)
		assert.Zero(t, cmds[i].returned, "documents returned")
	}

	// A rename killed after its collection moved, and a create killed
	// before it finished, are settled by _id alone.
	org := createAcme(t, m)
	dying := &failingStore{testStore: store, method: "CountTenantDocuments", nth: 1, crash: true}
	_, _ = newManager(t, dying).RenameOrg(t.Context(), org.ID, "Acme Global Inc")
	dying = &failingStore{testStore: store, method: "CreateAdmin", nth: 1, crash: true}
	_, _ = newManager(t, dying).CreateOrg(t.Context(), tenancy.CreateOrgParams{Name: "Globex", AdminEmail: "admin@globex.com", AdminPassword: "MySecurePassword123"})
	later := newManager(t, store, tenancy.WithClock(func() time.Time { return time.Now().Add(time.Minute) }))
	cmds = log.commandsDuring(func() {
		rep, err := later.RecoverPending(t.Context())
		require.NoError(t, err)
		assert.Equal(t, tenancy.RecoveryReport{RenamesSettled: 1, CreatesRolledBack: 1}, rep)
	})
	assert.Empty(t, onlyByID(cmds), "besides the journal, every read and write is by _id")
	returned := 0
	for _, c := range cmds {
		returned += c.returned
	}
	t.Logf("settling 2 operations among %d organizations: %d commands, %d documents returned", orgs, len(cmds), returned)
	// About 20 on a quiet machine; lock retries under load add some.
	// Ten thousand organizations would show as thousands.
	assert.Less(t, returned, 100, "documents returned do not grow with the organizations")
	got, err := m.OrgByName(t.Context(), "Acme Global Inc")
	require.NoError(t, err)
	assert.Equal(t, org.ID, got.ID, "the rename completed")
	assertJournalEmpty(t, store)
}

// roundTripsCached counts the commands of the hot reads with a cache
// (TestDatabaseRoundTrips/cached): none for an organization by name or id
// and for a token check once their records are cached, and only the
// document for a tenant read. A sole writer's tenant writes use the cache
// too; a cache that may be stale leaves them reading the organization
// from the database, and reads checking it after.
func roundTripsCached(t *testing.T) {
	for _, tc := range []struct {
		name         string
		opt          tenancy.Option
		insert, read []string
	}{
		{"sole writer", tenancy.WithSoleWriterCache(1000), []string{"insert"}, []string{"find"}},
		{"bounded staleness", tenancy.WithCache(1000, time.Minute), []string{"find", "insert", "find"}, []string{"find", "find"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log commandLog
			db := mongotest.NewDatabase(t, options.Client().SetMonitor(log.monitor()))
			store := newStore(t, db)
			require.NoError(t, store.EnsureIndexes(t.Context()))
			m := newManager(t, store, tc.opt)
			org := createAcme(t, m)
			ctx := t.Context()
			tok, err := m.Login(ctx, "admin@acme.com", "MySecurePassword123")
			require.NoError(t, err)
			tenant := m.Tenant(org.ID)
			doc, err := tenant.Insert(ctx, map[string]any{"n": 1})
			require.NoError(t, err)
			// The first reads fill the cache.
			_, err = m.OrgByName(ctx, "Acme Corporation")
			require.NoError(t, err)
			_, err = m.AuthenticateToken(ctx, tok.AccessToken)
			require.NoError(t, err)

			for _, read := range []struct {
				what string
				fn   func() error
			}{
				{"OrgByName", func() error { _, err := m.OrgByName(ctx, "Acme Corporation"); return err }},
				{"OrgByID", func() error { _, err := m.OrgByID(ctx, org.ID); return err }},
				{"AuthenticateToken", func() error { _, err := m.AuthenticateToken(ctx, tok.AccessToken); return err }},
			} {
				cmds := log.during(func() { require.NoError(t, read.fn()) })
				assert.Empty(t, cmds, "%s from the cache", read.what)
			}
			cmds := log.during(func() {
				_, err := tenant.Get(ctx, doc.ID)
				require.NoError(t, err)
			})
			assert.Equal(t, tc.read, cmds, "Tenant.Get: the document, and with a bound the organization after it")
			cmds = log.during(func() {
				_, err := tenant.Insert(ctx, map[string]any{"n": 2})
				require.NoError(t, err)
			})
			assert.Equal(t, tc.insert, cmds, "Tenant.Insert")

			// A write through the Manager drops what it changed: the next
			// read goes to the database.
			_, err = m.RenameOrg(ctx, org.ID, "Acme Global")
			require.NoError(t, err)
			cmds = log.during(func() {
				got, err := m.OrgByID(ctx, org.ID)
				require.NoError(t, err)
				assert.Equal(t, "Acme Global", got.Name)
			})
			assert.Equal(t, []string{"find"}, cmds, "OrgByID after a rename")
		})
	}
}
