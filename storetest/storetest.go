// Package storetest is the conformance suite every tenancy.Store must pass.
// A store's tests call Run with a constructor of fresh, empty stores:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) tenancy.Store { return memstore.New() })
//	}
package storetest

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
)

// test is one test of the suite, on a fresh store.
type test struct {
	name string
	fn   func(t *testing.T, s tenancy.Store)
}

// suites are the suites of the Store's roles, by the name of the subtest
// Run gives each.
var suites = []struct {
	role  string
	tests []test
}{
	{"Orgs", orgTests},
	{"Journal", journalTests},
	{"Admins", adminTests},
	{"LoginFailures", loginFailureTests},
	{"Revocations", revocationTests},
	{"Collections", collectionTests},
	{"Documents", documentTests},
	{"Members", memberTests},
	{"Invitations", invitationTests},
	{"Events", eventTests},
	{"Contexts", contextTests},
}

var (
	orgTests = []test{
		{"CreateAndGetOrg", testCreateAndGetOrg},
		{"DuplicateOrg", testDuplicateOrg},
		{"MissingRecords", testMissingRecords},
		{"UpdateOrg", testUpdateOrg},
		{"StaleUpdate", testStaleUpdate},
		{"DeleteOrg", testDeleteOrg},
		{"ReturnsCopies", testReturnsCopies},
		{"Names", testNames},
		{"ConcurrentReserveName", testConcurrentReserveName},
		{"ConcurrentCreateOrg", testConcurrentCreateOrg},
		{"Reservations", testReservations},
		{"UnfinishedOrgs", testUnfinishedOrgs},
	}
	journalTests = []test{
		{"Locks", testLocks},
		{"ConcurrentLockOrg", testConcurrentLockOrg},
		{"RenewLock", testRenewLock},
		{"ManyLockCycles", testManyLockCycles},
		{"Journal", testJournal},
	}
	adminTests = []test{
		{"AdminByEmail", testAdminByEmail},
		{"DuplicateAdmin", testDuplicateAdmin},
		{"ConcurrentCreateAdmin", testConcurrentCreateAdmin},
		{"SetAdminPassword", testSetAdminPassword},
	}
	loginFailureTests = []test{{"LoginFailures", testLoginFailures}}
	revocationTests   = []test{{"RevokeToken", testRevokeToken}, {"DeleteExpired", testDeleteExpired}}
	collectionTests   = []test{
		{"TenantCollections", testTenantCollections},
		{"UnicodeTenantCollection", testUnicodeTenantCollection},
		{"CopyTenantDocuments", testCopyTenantDocuments},
	}
	documentTests = []test{{"TenantDocuments", testTenantDocuments}}
	memberTests   = []test{
		{"Memberships", testMemberships},
		{"OrgMembers", testOrgMembers},
		{"ConcurrentAddMembership", testConcurrentAddMembership},
	}
	invitationTests = []test{
		{"Invitations", testInvitations},
		{"ConcurrentCreateInvitation", testConcurrentCreateInvitation},
	}
	eventTests = []test{
		{"AppendAndPage", testAppendAndPage},
		{"ConcurrentAppendEvent", testConcurrentAppendEvent},
		{"EventDelivery", testEventDelivery},
		{"JournalEvent", testJournalEvent},
	}
	contextTests = []test{{"CanceledContext", testCanceledContext}}
)

// Run runs the suite of every role of tenancy.Store, each as a subtest
// named after the role ("Orgs", "Journal", "Admins", "LoginFailures",
// "Revocations", "Collections", "Documents", "Members", "Invitations",
// "Events", and "Contexts" for what every
// method owes a done context). newStore must return an empty store that no
// other test uses. A role's suite runs alone with -run, as in
// -run 'TestConformance/Journal', or through its own Run function.
func Run(t *testing.T, newStore func(t *testing.T) tenancy.Store) {
	for _, s := range suites {
		t.Run(s.role, func(t *testing.T) { run(t, s.tests, newStore) })
	}
}

// RunOrgs runs the suite of tenancy.OrgStore.
func RunOrgs(t *testing.T, newStore func(t *testing.T) tenancy.Store) { run(t, orgTests, newStore) }

// RunJournal runs the suite of tenancy.JournalStore.
func RunJournal(t *testing.T, newStore func(t *testing.T) tenancy.Store) {
	run(t, journalTests, newStore)
}

// RunAdmins runs the suite of tenancy.AdminStore.
func RunAdmins(t *testing.T, newStore func(t *testing.T) tenancy.Store) { run(t, adminTests, newStore) }

// RunLoginFailures runs the suite of tenancy.LoginFailureStore.
func RunLoginFailures(t *testing.T, newStore func(t *testing.T) tenancy.Store) {
	run(t, loginFailureTests, newStore)
}

// RunRevocations runs the suite of tenancy.RevocationStore.
func RunRevocations(t *testing.T, newStore func(t *testing.T) tenancy.Store) {
	run(t, revocationTests, newStore)
}

// RunCollections runs the suite of tenancy.CollectionStore.
func RunCollections(t *testing.T, newStore func(t *testing.T) tenancy.Store) {
	run(t, collectionTests, newStore)
}

// RunDocuments runs the suite of tenancy.DocumentStore.
func RunDocuments(t *testing.T, newStore func(t *testing.T) tenancy.Store) {
	run(t, documentTests, newStore)
}

// RunEvents runs the suite of tenancy.EventStore.
func RunEvents(t *testing.T, newStore func(t *testing.T) tenancy.Store) {
	run(t, eventTests, newStore)
}

// RunMembers runs the suite of tenancy.MemberStore.
func RunMembers(t *testing.T, newStore func(t *testing.T) tenancy.Store) {
	run(t, memberTests, newStore)
}

// RunInvitations runs the suite of tenancy.InvitationStore.
func RunInvitations(t *testing.T, newStore func(t *testing.T) tenancy.Store) {
	run(t, invitationTests, newStore)
}

func run(t *testing.T, tests []test, newStore func(t *testing.T) tenancy.Store) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

// newID returns a fresh id in the ObjectID text form every store accepts.
func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// now returns the current time at the millisecond precision stores keep.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

func sampleOrg(identifier string) *tenancy.Org {
	t := now()
	return &tenancy.Org{
		ID:               tenancy.OrgID(newID()),
		Name:             "Org " + identifier,
		Identifier:       identifier,
		TenantCollection: tenancy.TenantCollection(identifier),
		AdminID:          tenancy.AdminID(newID()),
		AdminEmail:       "admin@" + identifier + ".example",
		State:            tenancy.OrgActive,
		CreatedAt:        t,
		ModifiedAt:       t,
	}
}

func sampleAdmin(email string) *tenancy.Admin {
	return &tenancy.Admin{
		ID:           tenancy.AdminID(newID()),
		Email:        email,
		PasswordHash: []byte("$2a$10$abcdefghijklmnopqrstuu5Qx9m1n0cP8o4fE2B3bq6kJ9nVxYzW"),
		OrgID:        tenancy.OrgID(newID()),
		CreatedAt:    now(),
	}
}

func assertOrgEqual(t *testing.T, want, got *tenancy.Org) {
	t.Helper()
	assert.Equal(t, want.ID, got.ID)
	assert.Equal(t, want.Name, got.Name)
	assert.Equal(t, want.Identifier, got.Identifier)
	assert.Equal(t, want.TenantCollection, got.TenantCollection)
	assert.Equal(t, want.AdminID, got.AdminID)
	assert.Equal(t, want.AdminEmail, got.AdminEmail)
	assert.Equal(t, want.State, got.State)
	assert.Equal(t, want.PendingName, got.PendingName)
	assert.Equal(t, want.PendingIdentifier, got.PendingIdentifier)
	assert.Equal(t, want.PendingCollection, got.PendingCollection)
	assert.True(t, want.CreatedAt.Equal(got.CreatedAt), "CreatedAt: want %v, got %v", want.CreatedAt, got.CreatedAt)
	assert.True(t, want.ModifiedAt.Equal(got.ModifiedAt), "ModifiedAt: want %v, got %v", want.ModifiedAt, got.ModifiedAt)
	assert.Equal(t, want.Version, got.Version)
}

// createNamed creates org holding its name, as the Manager always does
// (OrgByIdentifier may find an org through its name's reservation).
func createNamed(t *testing.T, s tenancy.Store, org *tenancy.Org) {
	t.Helper()
	require.NoError(t, s.ReserveName(t.Context(), org.Identifier, org.ID, now()))
	require.NoError(t, s.CreateOrg(t.Context(), org))
}

// race runs fn concurrently n times and returns the errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func assertOneWinner(t *testing.T, errs []error) {
	t.Helper()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
		} else {
			assert.ErrorIs(t, err, tenancy.ErrConflict)
		}
	}
	assert.Equal(t, 1, wins, "exactly one of %d concurrent calls must win", len(errs))
}
