package tenancy_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/crypto/bcrypt"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/memstore"
	"github.com/tenancy/tenancy/mongostore"
	"github.com/tenancy/tenancy/mongotest"
)

var testSecret = []byte("test-secret-of-at-least-32-bytes!!")

func newManager(t *testing.T, store tenancy.Store, opts ...tenancy.Option) *tenancy.Manager {
	t.Helper()
	m, err := tenancy.New(store, append([]tenancy.Option{
		tenancy.WithSigningSecret(testSecret),
		tenancy.WithBcryptCost(tenancy.MinBcryptCost),
		// Parallel tests under -race queue for bcrypt far longer than
		// production would; they are not testing the overload refusal.
		tenancy.WithHashWait(time.Minute),
	}, opts...)...)
	require.NoError(t, err)
	return m
}

// testStore is the Store the lifecycle tests run on.
type testStore = tenancy.Store

// putDoc adds a document of data to collection directly, as an
// application writing to its tenant collection would.
func putDoc(ctx context.Context, s tenancy.Store, collection string, data map[string]any) error {
	return s.AddTenantDocument(ctx, collection, &tenancy.Document{ID: bson.NewObjectID().Hex(), Data: data})
}

// eachStore marks t parallel and runs fn on memstore and on mongostore over
// the test server, so that every lifecycle test also runs against a real
// MongoDB-wire database.
func eachStore(t *testing.T, fn func(t *testing.T, store testStore)) {
	t.Parallel()
	t.Run("memstore", func(t *testing.T) { fn(t, memstore.New()) })
	t.Run("mongostore", func(t *testing.T) {
		s := newStore(t, mongotest.NewDatabase(t))
		require.NoError(t, s.EnsureIndexes(t.Context()))
		fn(t, s)
	})
}

func createAcme(t *testing.T, m *tenancy.Manager) *tenancy.Org {
	t.Helper()
	org, err := m.CreateOrg(t.Context(), tenancy.CreateOrgParams{
		Name: "Acme Corporation", AdminEmail: "admin@acme.com", AdminPassword: "MySecurePassword123",
	})
	require.NoError(t, err)
	return org
}

func fieldsOf(t *testing.T, err error) map[string]string {
	t.Helper()
	var verr *tenancy.ValidationError
	require.True(t, errors.As(err, &verr), "want *ValidationError, got %v", err)
	require.ErrorIs(t, err, tenancy.ErrInvalid)
	fields := map[string]string{}
	for _, f := range verr.Fields {
		fields[f.Field] = f.Message
	}
	return fields
}

func TestNewRefusesBadOptions(t *testing.T) {
	store := memstore.New()
	tests := map[string][]tenancy.Option{
		"no secret":         nil,
		"short secret":      {tenancy.WithSigningSecret([]byte("31-bytes-is-one-too-few-for-us!"))},
		"low bcrypt cost":   {tenancy.WithSigningSecret(testSecret), tenancy.WithBcryptCost(9)},
		"high bcrypt cost":  {tenancy.WithSigningSecret(testSecret), tenancy.WithBcryptCost(15)},
		"bcrypt cost 31":    {tenancy.WithSigningSecret(testSecret), tenancy.WithBcryptCost(31)},
		"bad algorithm":     {tenancy.WithSigningSecret(testSecret), tenancy.WithHMACAlgorithm("none")},
		"RS256":             {tenancy.WithSigningSecret(testSecret), tenancy.WithHMACAlgorithm("RS256")},
		"EdDSA as HMAC":     {tenancy.WithSigningSecret(testSecret), tenancy.WithHMACAlgorithm("EdDSA")},
		"zero lifetime":     {tenancy.WithSigningSecret(testSecret), tenancy.WithTokenLifetime(0)},
		"empty issuer":      {tenancy.WithSigningSecret(testSecret), tenancy.WithIssuer("")},
		"nil clock":         {tenancy.WithSigningSecret(testSecret), tenancy.WithClock(nil)},
		"nil logger":        {tenancy.WithSigningSecret(testSecret), tenancy.WithLogger(nil)},
		"negative lifetime": {tenancy.WithSigningSecret(testSecret), tenancy.WithTokenLifetime(-time.Minute)},
	}
	for name, opts := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := tenancy.New(store, opts...)
			assert.Error(t, err)
			assert.Nil(t, m)
		})
	}
	_, err := tenancy.New(nil, tenancy.WithSigningSecret(testSecret))
	assert.Error(t, err, "nil store")
}

// TestSigningOptionsCannotContradict checks that the signing options mean
// the same in any order: a Manager signs with one key, and options for the
// other kind of key are refused rather than silently overridden.
func TestSigningOptionsCannotContradict(t *testing.T) {
	store := memstore.New()
	_, edKey, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	edPub := edKey.Public().(ed25519.PublicKey)
	refused := map[string][]tenancy.Option{
		"secret and Ed25519 key":            {tenancy.WithSigningSecret(testSecret), tenancy.WithEd25519Key(edKey)},
		"HMAC algorithm and Ed25519 key":    {tenancy.WithEd25519Key(edKey), tenancy.WithHMACAlgorithm("HS512")},
		"previous secrets and Ed25519 key":  {tenancy.WithEd25519Key(edKey), tenancy.WithPreviousSigningSecrets(testSecret)},
		"previous Ed25519 keys without one": {tenancy.WithSigningSecret(testSecret), tenancy.WithPreviousEd25519Keys(edPub)},
		"previous secrets alone":            {tenancy.WithPreviousSigningSecrets(testSecret)},
	}
	for name, opts := range refused {
		t.Run(name, func(t *testing.T) {
			for _, order := range bothOrders(opts) {
				m, err := tenancy.New(store, order...)
				assert.Error(t, err)
				assert.Nil(t, m)
			}
		})
	}
	algs := map[string][]tenancy.Option{
		"HS256": {tenancy.WithSigningSecret(testSecret)},
		"HS512": {tenancy.WithHMACAlgorithm("HS512"), tenancy.WithSigningSecret(testSecret)},
		"EdDSA": {tenancy.WithPreviousEd25519Keys(edPub), tenancy.WithEd25519Key(edKey)},
	}
	for want, opts := range algs {
		t.Run(want, func(t *testing.T) {
			for _, order := range bothOrders(opts) {
				m, err := tenancy.New(store, order...)
				require.NoError(t, err)
				tok, err := m.IssueToken(&tenancy.Admin{ID: "a", Email: "a@example.com"}, &tenancy.Membership{OrgID: "o", AdminID: "a", Role: tenancy.RoleOwner})
				require.NoError(t, err)
				parsed, _, err := jwt.NewParser().ParseUnverified(tok.AccessToken, jwt.MapClaims{})
				require.NoError(t, err)
				assert.Equal(t, want, parsed.Method.Alg())
			}
		})
	}
}

// bothOrders returns opts as given and reversed.
func bothOrders(opts []tenancy.Option) [][]tenancy.Option {
	r := slices.Clone(opts)
	slices.Reverse(r)
	return [][]tenancy.Option{opts, r}
}

func TestCreateOrg(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		m := newManager(t, store)
		org := createAcme(t, m)

		assert.Len(t, string(org.ID), 24)
		assert.Equal(t, "Acme Corporation", org.Name)
		assert.Equal(t, "acme-corporation", org.Identifier)
		assert.Equal(t, "tenant_acme_corporation", org.TenantCollection)
		assert.Equal(t, "admin@acme.com", org.AdminEmail)
		assert.Equal(t, tenancy.OrgActive, org.State)

		admin, err := store.AdminByID(t.Context(), org.AdminID)
		require.NoError(t, err)
		assert.Equal(t, org.ID, admin.OrgID)
		assert.True(t, strings.HasPrefix(string(admin.PasswordHash), "$2a$10$"), "bcrypt hash at the configured cost")
		n, err := store.CountTenantDocuments(t.Context(), org.TenantCollection)
		require.NoError(t, err)
		assert.Equal(t, int64(1), n, "tenant collection holds its metadata document")
	})
}

func TestCreateOrgValidation(t *testing.T) {
	m := newManager(t, memstore.New())
	tests := []struct {
		desc   string
		params tenancy.CreateOrgParams
		fields []string
	}{
		{"all missing", tenancy.CreateOrgParams{}, []string{"organization_name", "email", "password"}},
		{"bad email", tenancy.CreateOrgParams{Name: "Acme", AdminEmail: "not-an-email", AdminPassword: "longenough"}, []string{"email"}},
		{"dotless domain", tenancy.CreateOrgParams{Name: "Acme", AdminEmail: "a@b", AdminPassword: "longenough"}, []string{"email"}},
		{"IP literal domain", tenancy.CreateOrgParams{Name: "Acme", AdminEmail: "a@[127.0.0.1]", AdminPassword: "longenough"}, []string{"email"}},
		{"display name email", tenancy.CreateOrgParams{Name: "Acme", AdminEmail: "Bob <bob@acme.com>", AdminPassword: "longenough"}, []string{"email"}},
		{"short password", tenancy.CreateOrgParams{Name: "Acme", AdminEmail: "a@acme.com", AdminPassword: "1234567"}, []string{"password"}},
		{"73-byte password", tenancy.CreateOrgParams{Name: "Acme", AdminEmail: "a@acme.com", AdminPassword: strings.Repeat("p", 73)}, []string{"password"}},
		{"name without letters", tenancy.CreateOrgParams{Name: "???", AdminEmail: "a@acme.com", AdminPassword: "longenough"}, []string{"organization_name"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			_, err := m.CreateOrg(t.Context(), tt.params)
			fields := fieldsOf(t, err)
			assert.Len(t, fields, len(tt.fields))
			for _, f := range tt.fields {
				assert.Contains(t, fields, f)
			}
		})
	}
	_, err := m.CreateOrg(t.Context(), tenancy.CreateOrgParams{Name: "Acme", AdminEmail: "a@acme.com", AdminPassword: strings.Repeat("p", 72)})
	assert.NoError(t, err, "72 bytes is the longest password")
}

func TestCreateOrgConflicts(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		m := newManager(t, store)
		createAcme(t, m)

		_, err := m.CreateOrg(t.Context(), tenancy.CreateOrgParams{Name: "ACME  corporation!", AdminEmail: "other@acme.com", AdminPassword: "password123"})
		assert.ErrorIs(t, err, tenancy.ErrConflict, "same identifier")

		_, err = m.CreateOrg(t.Context(), tenancy.CreateOrgParams{Name: "Other Org", AdminEmail: "ADMIN@acme.com", AdminPassword: "password123"})
		assert.ErrorIs(t, err, tenancy.ErrConflict, "same email")
		// The refused org left nothing behind: its name is free.
		_, err = m.OrgByName(t.Context(), "Other Org")
		assert.ErrorIs(t, err, tenancy.ErrNotFound)
		exists, err := store.TenantCollectionExists(t.Context(), "tenant_other_org")
		require.NoError(t, err)
		assert.False(t, exists)
		_, err = m.CreateOrg(t.Context(), tenancy.CreateOrgParams{Name: "Other Org", AdminEmail: "other@acme.com", AdminPassword: "password123"})
		assert.NoError(t, err)
	})
}

func TestConcurrentCreateOneName(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		m := newManager(t, store)
		const n = 6
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, errs[i] = m.CreateOrg(t.Context(), tenancy.CreateOrgParams{
					Name: "Race Corp", AdminEmail: fmt.Sprintf("admin%d@race.com", i), AdminPassword: "password123",
				})
			})
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			if err == nil {
				wins++
			} else {
				assert.ErrorIs(t, err, tenancy.ErrConflict)
			}
		}
		assert.Equal(t, 1, wins)
	})
}

func TestGetOrg(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		m := newManager(t, store)
		org := createAcme(t, m)

		for _, name := range []string{"Acme Corporation", "acme corporation", "ACME-CORPORATION", " Acme   Corporation. "} {
			got, err := m.OrgByName(t.Context(), name)
			require.NoError(t, err, name)
			assert.Equal(t, org.ID, got.ID)
			assert.Equal(t, "Acme Corporation", got.Name)
		}
		got, err := m.OrgByID(t.Context(), org.ID)
		require.NoError(t, err)
		assert.Equal(t, org.Identifier, got.Identifier)

		_, err = m.OrgByName(t.Context(), "Nobody Inc")
		assert.ErrorIs(t, err, tenancy.ErrNotFound)
		_, err = m.OrgByID(t.Context(), "507f1f77bcf86cd799439011")
		assert.ErrorIs(t, err, tenancy.ErrNotFound)
		_, err = m.OrgByName(t.Context(), "")
		assert.Contains(t, fieldsOf(t, err), "organization_name")
	})
}

// TestLookAlikeNamesConflict creates, next to "Acme Corporation", names
// that render the same: with invisible code points, Hangul fillers, or
// Cyrillic, Greek and Armenian letters drawn like the Latin ones. Each is
// the same organization, so a create or a rename to it is a conflict, and
// a lookup by it finds Acme.
func TestLookAlikeNamesConflict(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		m := newManager(t, store)
		acme := createAcme(t, m)
		other, err := m.CreateOrg(t.Context(), tenancy.CreateOrgParams{Name: "Other Org", AdminEmail: "o@other.com", AdminPassword: "password123"})
		require.NoError(t, err)
		for i, name := range []string{
			"Acme Corporation\u034f", "Acme Corporation\ufe0f", "Acme Corporation\u115f", "Acme\u3164Corporation",
			"Acme\uffa0Corporation", "\u0410\u0441\u043c\u0435 Corporation", "Acme Corporatio\u0578", "Acme C\u03bfrporation",
		} {
			_, err := m.CreateOrg(t.Context(), tenancy.CreateOrgParams{Name: name, AdminEmail: fmt.Sprintf("x%d@evil.com", i), AdminPassword: "password123"})
			assert.ErrorIs(t, err, tenancy.ErrConflict, "create %+q", name)
			_, err = m.RenameOrg(t.Context(), other.ID, name)
			assert.ErrorIs(t, err, tenancy.ErrConflict, "rename to %+q", name)
			got, err := m.OrgByName(t.Context(), name)
			if assert.NoError(t, err, "get %+q", name) {
				assert.Equal(t, acme.ID, got.ID)
			}
		}
	})
}

// TestOrgNamedUnderEarlierRulesStaysReachable stores organizations as the
// identifier rules before look-alikes counted would have (an identifier
// keeping a combining grapheme joiner, or a Cyrillic letter in a Latin
// name): their names still find them, delete them, and cannot be taken
// again by a new organization.
func TestOrgNamedUnderEarlierRulesStaysReachable(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		m := newManager(t, store)
		owner := createAcme(t, m)
		for i, tt := range []struct{ name, identifier string }{
			{"Joiner\u034f Labs", "joiner\u034f-labs"},
			{"A\u0441me Widgets", "a\u0441me-widgets"},
		} {
			now := time.Now().UTC()
			org := &tenancy.Org{
				ID: tenancy.OrgID(fmt.Sprintf("65f0000000000000000000%02d", i)), Name: tt.name, Identifier: tt.identifier,
				TenantCollection: tenancy.TenantCollection(tt.identifier), AdminID: owner.AdminID, AdminEmail: owner.AdminEmail,
				State: tenancy.OrgActive, CreatedAt: now, ModifiedAt: now,
			}
			require.NoError(t, store.ReserveName(ctx, org.Identifier, org.ID, now))
			require.NoError(t, store.CreateOrg(ctx, org))
			require.NoError(t, store.CreateTenantCollection(ctx, org.TenantCollection, org.ID, now))

			got, err := m.OrgByName(ctx, tt.name)
			require.NoError(t, err, "get %+q", tt.name)
			assert.Equal(t, org.ID, got.ID)
			_, err = m.CreateOrg(ctx, tenancy.CreateOrgParams{Name: tt.name, AdminEmail: fmt.Sprintf("new%d@example.com", i), AdminPassword: "password123"})
			assert.ErrorIs(t, err, tenancy.ErrConflict, "create %+q again", tt.name)
			_, err = m.RenameOrg(ctx, owner.ID, tt.name)
			assert.ErrorIs(t, err, tenancy.ErrConflict, "rename to %+q", tt.name)
			require.NoError(t, m.DeleteOrg(ctx, got.ID), "delete %+q", tt.name)
			_, err = m.OrgByID(ctx, org.ID)
			assert.ErrorIs(t, err, tenancy.ErrNotFound)
		}
	})
}

func TestRenameOrg(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		m := newManager(t, store)
		org := createAcme(t, m)
		for i := range 41 {
			require.NoError(t, putDoc(t.Context(), store, org.TenantCollection, map[string]any{"i": i}))
		}

		res, err := m.RenameOrg(t.Context(), org.ID, "Acme Global Inc")
		require.NoError(t, err)
		assert.Equal(t, "tenant_acme_corporation", res.PreviousCollection)
		assert.Equal(t, "tenant_acme_global_inc", res.CurrentCollection)
		assert.Equal(t, int64(42), res.DocumentsMigrated)
		assert.Equal(t, "acme-global-inc", res.Org.Identifier)
		assert.Equal(t, tenancy.OrgActive, res.Org.State)
		assert.Empty(t, res.Org.PendingIdentifier)

		_, err = m.OrgByName(t.Context(), "Acme Corporation")
		assert.ErrorIs(t, err, tenancy.ErrNotFound, "old name")
		got, err := m.OrgByName(t.Context(), "Acme Global Inc")
		require.NoError(t, err)
		assert.Equal(t, org.ID, got.ID)
		exists, err := store.TenantCollectionExists(t.Context(), "tenant_acme_corporation")
		require.NoError(t, err)
		assert.False(t, exists, "old collection gone")

		// The old name is free for a new org.
		_, err = m.CreateOrg(t.Context(), tenancy.CreateOrgParams{Name: "Acme Corporation", AdminEmail: "new@acme.com", AdminPassword: "password123"})
		assert.NoError(t, err)

		// Same identifier: display name only.
		res, err = m.RenameOrg(t.Context(), org.ID, "ACME Global, Inc.")
		require.NoError(t, err)
		assert.Equal(t, res.PreviousCollection, res.CurrentCollection)
		assert.Equal(t, "ACME Global, Inc.", res.Org.Name)
		assert.Equal(t, int64(42), res.DocumentsMigrated)
	})
}

func TestRenameOrgRefused(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		m := newManager(t, store)
		org := createAcme(t, m)
		other, err := m.CreateOrg(t.Context(), tenancy.CreateOrgParams{Name: "Taken Name", AdminEmail: "t@taken.com", AdminPassword: "password123"})
		require.NoError(t, err)

		_, err = m.RenameOrg(t.Context(), org.ID, "taken  NAME")
		var cerr *tenancy.ConflictError
		require.ErrorAs(t, err, &cerr)
		assert.Contains(t, cerr.Message, "already taken", "another org's name reads as taken")
		_, err = m.RenameOrg(t.Context(), "507f1f77bcf86cd799439011", "Fresh Name")
		assert.ErrorIs(t, err, tenancy.ErrNotFound)
		_, err = m.RenameOrg(t.Context(), org.ID, "   ")
		assert.Contains(t, fieldsOf(t, err), "organization_name")

		got, err := m.OrgByID(t.Context(), org.ID)
		require.NoError(t, err)
		assert.Equal(t, "acme-corporation", got.Identifier, "refused renames change nothing")
		got, err = m.OrgByID(t.Context(), other.ID)
		require.NoError(t, err)
		assert.Equal(t, "taken-name", got.Identifier)
	})
}

func TestDeleteOrg(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		m := newManager(t, store)
		org := createAcme(t, m)

		require.NoError(t, m.DeleteOrg(t.Context(), org.ID))
		_, err := m.OrgByName(t.Context(), "Acme Corporation")
		assert.ErrorIs(t, err, tenancy.ErrNotFound)
		_, err = store.AdminByID(t.Context(), org.AdminID)
		assert.ErrorIs(t, err, tenancy.ErrNotFound, "admin deleted")
		exists, err := store.TenantCollectionExists(t.Context(), org.TenantCollection)
		require.NoError(t, err)
		assert.False(t, exists, "tenant collection dropped")
		_, err = m.Login(t.Context(), "admin@acme.com", "MySecurePassword123")
		assert.ErrorIs(t, err, tenancy.ErrUnauthenticated, "no login after delete")

		assert.ErrorIs(t, m.DeleteOrg(t.Context(), org.ID), tenancy.ErrNotFound, "second delete")
		// Name and email are free again.
		createAcme(t, m)
	})
}

func TestLogin(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		m := newManager(t, store)
		org := createAcme(t, m)

		tok, err := m.Login(t.Context(), "  ADMIN@acme.com ", "MySecurePassword123")
		require.NoError(t, err)
		assert.Equal(t, "bearer", tok.TokenType)
		assert.Equal(t, org.ID, tok.OrgID)
		assert.Equal(t, org.AdminID, tok.AdminID)

		claims, err := m.VerifyToken(tok.AccessToken)
		require.NoError(t, err)
		assert.Equal(t, org.ID, claims.OrgID)
		assert.Equal(t, org.AdminID, claims.AdminID)
		assert.Equal(t, "admin@acme.com", claims.Email)
		assert.Equal(t, string(org.AdminID), claims.Subject)
		assert.Equal(t, tenancy.DefaultIssuer, claims.Issuer)
		assert.WithinDuration(t, claims.IssuedAt.Add(tenancy.DefaultTokenLifetime), claims.ExpiresAt, time.Second)

		wrong, err := m.Login(t.Context(), "admin@acme.com", "WrongPassword123")
		assert.ErrorIs(t, err, tenancy.ErrUnauthenticated)
		assert.Nil(t, wrong)
		_, unknownErr := m.Login(t.Context(), "nobody@acme.com", "MySecurePassword123")
		assert.ErrorIs(t, unknownErr, tenancy.ErrUnauthenticated)
		assert.Equal(t, err.Error(), unknownErr.Error(), "unknown email and wrong password read the same")

		_, err = m.Login(t.Context(), "admin@acme.com", strings.Repeat("p", 73))
		assert.Contains(t, fieldsOf(t, err), "password", "73 bytes is refused, not truncated")
		_, err = m.Login(t.Context(), "", "")
		fields := fieldsOf(t, err)
		assert.Contains(t, fields, "email")
		assert.Contains(t, fields, "password")
	})
}

func TestVerifyTokenRejects(t *testing.T) {
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := func() time.Time { return clock }
	m := newManager(t, memstore.New(), tenancy.WithClock(now))
	createAcme(t, m)
	tok, err := m.Login(t.Context(), "admin@acme.com", "MySecurePassword123")
	require.NoError(t, err)
	good := tok.AccessToken

	sign := func(method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(method, claims).SignedString(key)
		require.NoError(t, err)
		return s
	}
	valid := func() jwt.MapClaims {
		return jwt.MapClaims{
			"admin_id": string(tok.AdminID), "org_id": string(tok.OrgID), "email": "admin@acme.com",
			"sub": string(tok.AdminID), "iss": tenancy.DefaultIssuer,
			"iat": clock.Unix(), "exp": clock.Add(time.Hour).Unix(), "jti": "0123456789abcdef01234567",
		}
	}
	withKID := func(kid any) string {
		tk := jwt.NewWithClaims(jwt.SigningMethodHS256, valid())
		tk.Header["kid"] = kid
		s, err := tk.SignedString(testSecret)
		require.NoError(t, err)
		return s
	}
	without := func(key string) jwt.MapClaims { c := valid(); delete(c, key); return c }
	with := func(key string, v any) jwt.MapClaims { c := valid(); c[key] = v; return c }
	parts := strings.Split(good, ".")

	tests := map[string]string{
		"empty":            "",
		"garbage":          "not.a.token",
		"alg none":         sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid()),
		"other algorithm":  sign(jwt.SigningMethodHS512, testSecret, valid()),
		"wrong key":        sign(jwt.SigningMethodHS256, []byte("another-secret-of-at-least-32-bytes"), valid()),
		"expired":          sign(jwt.SigningMethodHS256, testSecret, with("exp", clock.Add(-time.Second).Unix())),
		"no exp":           sign(jwt.SigningMethodHS256, testSecret, without("exp")),
		"wrong issuer":     sign(jwt.SigningMethodHS256, testSecret, with("iss", "someone-else")),
		"no issuer":        sign(jwt.SigningMethodHS256, testSecret, without("iss")),
		"issued in future": sign(jwt.SigningMethodHS256, testSecret, with("iat", clock.Add(time.Hour).Unix())),
		"no org":           sign(jwt.SigningMethodHS256, testSecret, without("org_id")),
		"no admin":         sign(jwt.SigningMethodHS256, testSecret, without("admin_id")),
		"sub mismatch":     sign(jwt.SigningMethodHS256, testSecret, with("sub", "someone")),
		"tampered payload": parts[0] + "." + strings.TrimRight(parts[1], "A") + "B." + parts[2],
		"stripped sig":     parts[0] + "." + parts[1] + ".",
		"no jti":           sign(jwt.SigningMethodHS256, testSecret, without("jti")),
		"unknown kid":      withKID("hs-unknown"),
		"kid not a string": withKID(7),
		"huge token":       strings.Repeat("a", tenancy.MaxTokenLength+1),
	}
	for name, token := range tests {
		t.Run(name, func(t *testing.T) {
			claims, err := m.VerifyToken(token)
			assert.ErrorIs(t, err, tenancy.ErrUnauthenticated)
			assert.Nil(t, claims)
		})
	}
	_, err = m.VerifyToken(sign(jwt.SigningMethodHS256, testSecret, valid()))
	assert.NoError(t, err, "the hand-made valid token verifies, so each case above fails for its own reason")

	clock = clock.Add(tenancy.DefaultTokenLifetime + time.Second)
	_, err = m.VerifyToken(good)
	assert.ErrorIs(t, err, tenancy.ErrUnauthenticated, "issued token after its lifetime")
}

// failingStore fails the nth call of one Store method, either before the
// call (nothing happened) or after it (the call took effect, but its caller
// sees an error, as with a lost reply), to check that every operation
// leaves a consistent state.
type failingStore struct {
	testStore
	method string
	nth    int  // 1-based call to fail
	after  bool // perform the call, then fail
	crash  bool // fail every call after the injected failure, as a dead process makes none
	mu     sync.Mutex
	failed bool
	calls  map[string]int
}

// count returns how many times method was called.
func (s *failingStore) count(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// hasFailed reports whether the fault was reached.
func (s *failingStore) hasFailed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

var errInjected = errors.New("injected failure")

func (s *failingStore) call(method string, do func() error) error {
	s.mu.Lock()
	if s.failed && s.crash {
		s.mu.Unlock()
		return errInjected
	}
	if s.calls == nil {
		s.calls = map[string]int{}
	}
	s.calls[method]++
	hit := method == s.method && s.calls[method] == s.nth
	if hit {
		s.failed = true
	}
	s.mu.Unlock()
	if !hit {
		return do()
	}
	if s.after {
		_ = do()
	}
	return errInjected
}

func (s *failingStore) ReserveName(ctx context.Context, id string, org tenancy.OrgID, at time.Time) error {
	return s.call("ReserveName", func() error { return s.testStore.ReserveName(ctx, id, org, at) })
}

func (s *failingStore) ReleaseName(ctx context.Context, id string, org tenancy.OrgID) error {
	return s.call("ReleaseName", func() error { return s.testStore.ReleaseName(ctx, id, org) })
}

func (s *failingStore) CreateOrg(ctx context.Context, org *tenancy.Org) error {
	return s.call("CreateOrg", func() error { return s.testStore.CreateOrg(ctx, org) })
}

func (s *failingStore) UpdateOrg(ctx context.Context, org *tenancy.Org) error {
	return s.call("UpdateOrg", func() error { return s.testStore.UpdateOrg(ctx, org) })
}

func (s *failingStore) DeleteOrg(ctx context.Context, id tenancy.OrgID) error {
	return s.call("DeleteOrg", func() error { return s.testStore.DeleteOrg(ctx, id) })
}

func (s *failingStore) CreateAdmin(ctx context.Context, a *tenancy.Admin) error {
	return s.call("CreateAdmin", func() error { return s.testStore.CreateAdmin(ctx, a) })
}

func (s *failingStore) DeleteAdmin(ctx context.Context, id tenancy.AdminID) error {
	return s.call("DeleteAdmin", func() error { return s.testStore.DeleteAdmin(ctx, id) })
}

func (s *failingStore) CreateTenantCollection(ctx context.Context, name string, owner tenancy.OrgID, at time.Time) error {
	return s.call("CreateTenantCollection", func() error { return s.testStore.CreateTenantCollection(ctx, name, owner, at) })
}

func (s *failingStore) RenameTenantCollection(ctx context.Context, from, to string) error {
	return s.call("RenameTenantCollection", func() error { return s.testStore.RenameTenantCollection(ctx, from, to) })
}

func (s *failingStore) DropTenantCollection(ctx context.Context, name string) error {
	return s.call("DropTenantCollection", func() error { return s.testStore.DropTenantCollection(ctx, name) })
}

func (s *failingStore) LockOrg(ctx context.Context, org tenancy.OrgID, owner string, expires, now time.Time) error {
	return s.call("LockOrg", func() error { return s.testStore.LockOrg(ctx, org, owner, expires, now) })
}

func (s *failingStore) UnlockOrg(ctx context.Context, org tenancy.OrgID, owner string) error {
	return s.call("UnlockOrg", func() error { return s.testStore.UnlockOrg(ctx, org, owner) })
}

func (s *failingStore) RenewLock(ctx context.Context, org tenancy.OrgID, owner string, expires time.Time) error {
	return s.call("RenewLock", func() error { return s.testStore.RenewLock(ctx, org, owner, expires) })
}

func (s *failingStore) PutOperation(ctx context.Context, op *tenancy.Operation) error {
	return s.call("PutOperation", func() error { return s.testStore.PutOperation(ctx, op) })
}

func (s *failingStore) DeleteOperation(ctx context.Context, org tenancy.OrgID) error {
	return s.call("DeleteOperation", func() error { return s.testStore.DeleteOperation(ctx, org) })
}

func (s *failingStore) CountTenantDocuments(ctx context.Context, name string) (int64, error) {
	var n int64
	err := s.call("CountTenantDocuments", func() error {
		var err error
		n, err = s.testStore.CountTenantDocuments(ctx, name)
		return err
	})
	return n, err
}

func (s *failingStore) CopyTenantDocuments(ctx context.Context, from, to string, progress func(int64)) (int64, error) {
	var n int64
	err := s.call("CopyTenantDocuments", func() error {
		var err error
		n, err = s.testStore.CopyTenantDocuments(ctx, from, to, progress)
		return err
	})
	return n, err
}

func (s *failingStore) AddTenantDocument(ctx context.Context, collection string, doc *tenancy.Document) error {
	return s.call("AddTenantDocument", func() error { return s.testStore.AddTenantDocument(ctx, collection, doc) })
}

// fault is one injected failure.
type fault struct {
	method string
	nth    int
}

// forEachFault marks t parallel and runs fn in a subtest for every fault,
// failing before and after the call.
func forEachFault(t *testing.T, faults []fault, fn func(t *testing.T, f fault, after bool)) {
	t.Parallel()
	for _, f := range faults {
		for _, after := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s#%d/after=%v", f.method, f.nth, after), func(t *testing.T) {
				fn(t, f, after)
			})
		}
	}
}

// eachFault runs fn for every fault on a memstore that fails there.
func eachFault(t *testing.T, faults []fault, fn func(t *testing.T, store *failingStore)) {
	forEachFault(t, faults, func(t *testing.T, f fault, after bool) {
		fn(t, &failingStore{testStore: memstore.New(), method: f.method, nth: f.nth, after: after})
	})
}

func assertNoTrace(t *testing.T, store tenancy.Store, identifier, email string) {
	t.Helper()
	_, err := store.OrgByIdentifier(t.Context(), identifier)
	assert.ErrorIs(t, err, tenancy.ErrNotFound, "no org left")
	_, err = store.AdminByEmail(t.Context(), email)
	assert.ErrorIs(t, err, tenancy.ErrNotFound, "no admin left")
	exists, err := store.TenantCollectionExists(t.Context(), tenancy.TenantCollection(identifier))
	require.NoError(t, err)
	assert.False(t, exists, "no collection left")
}

func TestCreateOrgUndoesPartialWork(t *testing.T) {
	faults := []fault{{"PutOperation", 1}, {"ReserveName", 1}, {"CreateOrg", 1}, {"CreateTenantCollection", 1}, {"CreateAdmin", 1}, {"UpdateOrg", 1}}
	eachFault(t, faults, func(t *testing.T, store *failingStore) {
		m := newManager(t, store)
		_, err := m.CreateOrg(t.Context(), tenancy.CreateOrgParams{Name: "Acme Corporation", AdminEmail: "admin@acme.com", AdminPassword: "MySecurePassword123"})
		require.ErrorIs(t, err, errInjected)
		assertNoTrace(t, store, "acme-corporation", "admin@acme.com")
		assertJournalEmpty(t, store)
		createAcme(t, m) // and the name and email are free
	})
}

func TestRenameOrgUndoesPartialWork(t *testing.T) {
	faults := []fault{
		{"PutOperation", 2}, {"ReserveName", 2}, {"UpdateOrg", 2}, {"RenameTenantCollection", 1},
		{"CountTenantDocuments", 1}, {"UpdateOrg", 3},
	}
	eachFault(t, faults, func(t *testing.T, store *failingStore) {
		m := newManager(t, store)
		org := createAcme(t, m)
		for i := range 41 {
			require.NoError(t, putDoc(t.Context(), store, org.TenantCollection, map[string]any{"i": i}))
		}
		_, err := m.RenameOrg(t.Context(), org.ID, "Acme Global Inc")
		require.ErrorIs(t, err, errInjected)

		got, err := m.OrgByName(t.Context(), "Acme Corporation")
		require.NoError(t, err, "old name still resolves")
		assert.Equal(t, tenancy.OrgActive, got.State)
		assert.Equal(t, "tenant_acme_corporation", got.TenantCollection)
		assert.Empty(t, got.PendingIdentifier)
		n, err := store.CountTenantDocuments(t.Context(), "tenant_acme_corporation")
		require.NoError(t, err)
		assert.Equal(t, int64(42), n, "every document back in the old collection")
		exists, err := store.TenantCollectionExists(t.Context(), "tenant_acme_global_inc")
		require.NoError(t, err)
		assert.False(t, exists, "no new collection left")
		_, err = m.OrgByName(t.Context(), "Acme Global Inc")
		assert.ErrorIs(t, err, tenancy.ErrNotFound)
		assertJournalEmpty(t, store)

		res, err := m.RenameOrg(t.Context(), org.ID, "Acme Global Inc")
		require.NoError(t, err, "the new name was released and the rename can be retried")
		assert.Equal(t, int64(42), res.DocumentsMigrated)
	})
}

func TestDeleteOrgCanBeRetried(t *testing.T) {
	faults := []fault{{"PutOperation", 2}, {"UpdateOrg", 2}, {"DeleteAdmin", 1}, {"DropTenantCollection", 1}, {"ReleaseName", 1}, {"DeleteOrg", 1}}
	eachFault(t, faults, func(t *testing.T, store *failingStore) {
		m := newManager(t, store)
		org := createAcme(t, m)
		require.ErrorIs(t, m.DeleteOrg(t.Context(), org.ID), errInjected)

		// A deletion in progress is still found by its id.
		err := m.DeleteOrg(t.Context(), org.ID)
		if !store.after || store.method != "DeleteOrg" {
			require.NoError(t, err, "retrying the delete finishes it")
		} else {
			assert.ErrorIs(t, err, tenancy.ErrNotFound, "the delete had finished")
		}
		assertNoTrace(t, store, "acme-corporation", "admin@acme.com")
		createAcme(t, m)
	})
}

func TestConcurrentRenames(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		m := newManager(t, store)
		org := createAcme(t, m)
		for i := range 9 {
			require.NoError(t, putDoc(t.Context(), store, org.TenantCollection, map[string]any{"i": i}))
		}
		const n = 6
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, errs[i] = m.RenameOrg(t.Context(), org.ID, fmt.Sprintf("Target %d", i))
			})
		}
		wg.Wait()
		// Renames that overlap conflict; ones that run after another
		// finished succeed too. Whatever the order, one consistent state
		// remains.
		winners := map[string]bool{}
		for i, err := range errs {
			if err == nil {
				winners[fmt.Sprintf("target-%d", i)] = true
			} else {
				assert.ErrorIs(t, err, tenancy.ErrConflict)
			}
		}
		require.NotEmpty(t, winners, "a rename succeeds: %v", errs)

		got, err := m.OrgByID(t.Context(), org.ID)
		require.NoError(t, err)
		assert.True(t, winners[got.Identifier], "final name %s is a successful rename's", got.Identifier)
		assert.Equal(t, tenancy.OrgActive, got.State)
		count, err := store.CountTenantDocuments(t.Context(), got.TenantCollection)
		require.NoError(t, err)
		assert.Equal(t, int64(10), count, "every document in the org's collection")
		for i := range n {
			id := fmt.Sprintf("target-%d", i)
			if id == got.Identifier {
				continue
			}
			exists, err := store.TenantCollectionExists(t.Context(), tenancy.TenantCollection(id))
			require.NoError(t, err)
			assert.False(t, exists, "no collection for %s", id)
		}
		exists, err := store.TenantCollectionExists(t.Context(), org.TenantCollection)
		require.NoError(t, err)
		assert.False(t, exists, "the old collection is gone")

		// Two orgs renamed to one name: exactly one gets it.
		other, err := m.CreateOrg(t.Context(), tenancy.CreateOrgParams{Name: "Other", AdminEmail: "o@other.com", AdminPassword: "password123"})
		require.NoError(t, err)
		var e1, e2 error
		wg.Go(func() { _, e1 = m.RenameOrg(t.Context(), got.ID, "Contested Name") })
		wg.Go(func() { _, e2 = m.RenameOrg(t.Context(), other.ID, "contested-name") })
		wg.Wait()
		assert.True(t, (e1 == nil) != (e2 == nil), "exactly one wins: %v, %v", e1, e2)
		for _, err := range []error{e1, e2} {
			if err != nil {
				assert.ErrorIs(t, err, tenancy.ErrConflict)
			}
		}
	})
}

// TestInterruptedRenameIsSettled leaves a rename as a dead process would,
// before and after its collection moved, and checks that the next
// operation on the org settles it instead of refusing forever.
func TestInterruptedRenameIsSettled(t *testing.T) {
	for _, moved := range []bool{false, true} {
		t.Run(fmt.Sprintf("moved=%v", moved), func(t *testing.T) {
			eachStore(t, func(t *testing.T, store testStore) {
				ctx := t.Context()
				m := newManager(t, store)
				org := createAcme(t, m)
				for i := range 4 {
					require.NoError(t, putDoc(ctx, store, org.TenantCollection, map[string]any{"i": i}))
				}
				// The steps of RenameOrg up to the crash.
				require.NoError(t, store.ReserveName(ctx, "acme-global-inc", org.ID, time.Now()))
				org.State = tenancy.OrgRenaming
				org.PendingName, org.PendingIdentifier, org.PendingCollection = "Acme Global Inc", "acme-global-inc", "tenant_acme_global_inc"
				require.NoError(t, store.UpdateOrg(ctx, org))
				if moved {
					require.NoError(t, store.RenameTenantCollection(ctx, "tenant_acme_corporation", "tenant_acme_global_inc"))
				}

				res, err := m.RenameOrg(ctx, org.ID, "Third Name")
				require.NoError(t, err)
				assert.Equal(t, int64(5), res.DocumentsMigrated, "no document lost")
				want := "tenant_acme_corporation"
				if moved {
					want = "tenant_acme_global_inc"
				}
				assert.Equal(t, want, res.PreviousCollection)
				assert.Equal(t, "tenant_third_name", res.CurrentCollection)

				// Both earlier names are free again.
				for i, name := range []string{"Acme Corporation", "Acme Global Inc"} {
					_, err := m.CreateOrg(ctx, tenancy.CreateOrgParams{Name: name, AdminEmail: fmt.Sprintf("admin%d@x.com", i), AdminPassword: "password123"})
					assert.NoError(t, err, name)
				}
			})
		})
	}
}

// crashLease is the operation lease of the crash tests: short, so that
// leases are renewed while operations run under -race and a dead
// operation's lease runs out in real time, with no clock moved, yet long
// enough that a loaded CI machine renews in time.
const crashLease = 2 * time.Second

// crashAndRecover runs op on a store that dies at fault (every later call
// fails, so nothing is rolled back and no lease is renewed, as when the
// process is killed), while another Manager runs the recovery loop, as
// every serving process does, and returns once the loop has emptied the
// journal of operations in flight.
func crashAndRecover(t *testing.T, store testStore, f fault, after bool, setup func(m *tenancy.Manager), op func(m *tenancy.Manager) error) {
	t.Helper()
	crashAndRecoverWith(t, store, f, after, nil, setup, op)
}

// crashAndRecoverWith is crashAndRecover with opts for every Manager.
func crashAndRecoverWith(t *testing.T, store testStore, f fault, after bool, opts []tenancy.Option, setup func(m *tenancy.Manager), op func(m *tenancy.Manager) error) {
	t.Helper()
	with := func(more ...tenancy.Option) []tenancy.Option { return append(slices.Clone(opts), more...) }
	setup(newManager(t, store, with()...))
	dying := &failingStore{testStore: store, method: f.method, nth: f.nth, after: after, crash: true}
	// The operation's error, if any, is what its dying process saw; only
	// the state it left matters here.
	_ = op(newManager(t, dying, with(tenancy.WithOperationLease(crashLease))...))
	require.True(t, dying.hasFailed(), "the fault %v was reached", f)

	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- newManager(t, store, with(tenancy.WithOperationLease(crashLease))...).RunRecovery(ctx, 20*time.Millisecond)
	}()
	require.Eventually(t, func() bool {
		ops, err := store.Operations(t.Context())
		return err == nil && len(ops) == 0
	}, 30*time.Second, 20*time.Millisecond, "the recovery loop settles the journal")
	stop()
	assert.ErrorIs(t, <-done, context.Canceled)
}

// assertJournalEmpty checks that no operation is left in flight.
func assertJournalEmpty(t *testing.T, store tenancy.Store) {
	t.Helper()
	ops, err := store.Operations(t.Context())
	require.NoError(t, err)
	assert.Empty(t, ops, "the journal of operations in flight")
}

// eachCrash runs fn on a fresh mongostore for every fault, in parallel.
func eachCrash(t *testing.T, faults []fault, fn func(t *testing.T, store testStore, f fault, after bool), opts ...mongostore.Option) {
	forEachFault(t, faults, func(t *testing.T, f fault, after bool) {
		t.Parallel()
		s := newStore(t, mongotest.NewDatabase(t), opts...)
		require.NoError(t, s.EnsureIndexes(t.Context()))
		fn(t, s, f, after)
	})
}

func TestRecoverCreate(t *testing.T) {
	faults := []fault{
		{"LockOrg", 1}, {"PutOperation", 1}, {"ReserveName", 1}, {"CreateOrg", 1}, {"CreateTenantCollection", 1},
		{"CreateAdmin", 1}, {"UpdateOrg", 1}, {"DeleteOperation", 1}, {"UnlockOrg", 1},
	}
	eachCrash(t, faults, func(t *testing.T, store testStore, f fault, after bool) {
		crashAndRecover(t, store, f, after, func(*tenancy.Manager) {}, func(m *tenancy.Manager) error {
			_, err := m.CreateOrg(t.Context(), tenancy.CreateOrgParams{Name: "Acme Corporation", AdminEmail: "admin@acme.com", AdminPassword: "MySecurePassword123"})
			return err
		})
		m := newManager(t, store)
		org, err := store.OrgByIdentifier(t.Context(), "acme-corporation")
		if err == nil && org.State == tenancy.OrgActive {
			// The activation was written before the crash: the new state, whole.
			_, err := store.AdminByID(t.Context(), org.AdminID)
			assert.NoError(t, err, "admin of the created org")
			exists, err := store.TenantCollectionExists(t.Context(), org.TenantCollection)
			require.NoError(t, err)
			assert.True(t, exists, "collection of the created org")
			_, err = m.Login(t.Context(), "admin@acme.com", "MySecurePassword123")
			assert.NoError(t, err)
			return
		}
		// Otherwise the old state: nothing, and the name and email free.
		assertNoTrace(t, store, "acme-corporation", "admin@acme.com")
		createAcme(t, m)
	})
}

func TestRecoverRename(t *testing.T) {
	faults := []fault{
		{"LockOrg", 1}, {"PutOperation", 1}, {"ReserveName", 1}, {"UpdateOrg", 1}, {"RenameTenantCollection", 1},
		{"CountTenantDocuments", 1}, {"UpdateOrg", 2}, {"ReleaseName", 1}, {"DeleteOperation", 1}, {"UnlockOrg", 1},
	}
	eachCrash(t, faults, recoverRenameCase)
}

// TestRecoverRenameByCopy crashes renames that copy the documents, on a
// store that refuses renameCollection.
func TestRecoverRenameByCopy(t *testing.T) {
	faults := []fault{
		{"PutOperation", 1}, {"ReserveName", 1}, {"UpdateOrg", 1}, {"RenameTenantCollection", 1}, {"UpdateOrg", 2},
		{"CopyTenantDocuments", 1}, {"DropTenantCollection", 1}, {"UpdateOrg", 3}, {"ReleaseName", 1}, {"DeleteOperation", 1},
	}
	eachCrash(t, faults, recoverRenameCase, mongostore.WithoutRenameCollection(), mongostore.WithCopyBatchSize(7))
}

// recoverRenameCase crashes a rename of a 42-document tenant at f and
// checks that recovery leaves the old state or the new one, whole.
func recoverRenameCase(t *testing.T, store testStore, f fault, after bool) {
	var org *tenancy.Org
	crashAndRecover(t, store, f, after, func(m *tenancy.Manager) {
		org = createAcme(t, m)
		for i := range 41 {
			require.NoError(t, putDoc(t.Context(), store, org.TenantCollection, map[string]any{"i": i}))
		}
	}, func(m *tenancy.Manager) error {
		_, err := m.RenameOrg(t.Context(), org.ID, "Acme Global Inc")
		return err
	})

	m := newManager(t, store)
	got, err := m.OrgByID(t.Context(), org.ID)
	require.NoError(t, err)
	assert.Equal(t, tenancy.OrgActive, got.State)
	assert.Empty(t, got.PendingIdentifier)
	require.Contains(t, []string{"acme-corporation", "acme-global-inc"}, got.Identifier, "the old name or the new one")
	n, err := store.CountTenantDocuments(t.Context(), got.TenantCollection)
	require.NoError(t, err)
	assert.Equal(t, int64(42), n, "every document in the org's collection")
	byName, err := m.OrgByName(t.Context(), got.Name)
	require.NoError(t, err, "the current name resolves")
	assert.Equal(t, org.ID, byName.ID)

	unused := map[string]string{"acme-corporation": "Acme Corporation", "acme-global-inc": "Acme Global Inc"}
	delete(unused, got.Identifier)
	for id, name := range unused {
		exists, err := store.TenantCollectionExists(t.Context(), tenancy.TenantCollection(id))
		require.NoError(t, err)
		assert.False(t, exists, "no collection under the unused name")
		_, err = m.CreateOrg(t.Context(), tenancy.CreateOrgParams{Name: name, AdminEmail: "next@acme.com", AdminPassword: "password123"})
		assert.NoError(t, err, "the unused name %q is free", name)
	}
	// A lock the dead process held ends with its lease.
	later := func() time.Time { return time.Now().Add(tenancy.DefaultOperationLease + time.Minute) }
	_, err = newManager(t, store, tenancy.WithClock(later)).RenameOrg(t.Context(), org.ID, "Acme Third")
	assert.NoError(t, err, "the org is not locked past the lease")
}

func TestRecoverDelete(t *testing.T) {
	faults := []fault{{"LockOrg", 1}, {"PutOperation", 1}, {"UpdateOrg", 1}, {"DeleteAdmin", 1}, {"DropTenantCollection", 1}, {"ReleaseName", 1}, {"DeleteOrg", 1}, {"DeleteOperation", 1}}
	eachCrash(t, faults, func(t *testing.T, store testStore, f fault, after bool) {
		var org *tenancy.Org
		crashAndRecover(t, store, f, after, func(m *tenancy.Manager) { org = createAcme(t, m) }, func(m *tenancy.Manager) error {
			return m.DeleteOrg(t.Context(), org.ID)
		})
		m := newManager(t, store)
		if got, err := m.OrgByID(t.Context(), org.ID); err == nil {
			// Crashed before the deletion was recorded: the old state, whole.
			assert.Equal(t, tenancy.OrgActive, got.State)
			_, err := m.Login(t.Context(), "admin@acme.com", "MySecurePassword123")
			assert.NoError(t, err)
			return
		}
		assertNoTrace(t, store, "acme-corporation", "admin@acme.com")
		createAcme(t, m)
	})
}

func TestRecoverLeavesLiveOperationsAlone(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		m := newManager(t, store)
		org := createAcme(t, m)
		// A rename in flight right now, in another process.
		require.NoError(t, store.ReserveName(t.Context(), "in-flight", org.ID, time.Now()))
		rep, err := m.Recover(t.Context())
		require.NoError(t, err)
		assert.Equal(t, tenancy.RecoveryReport{}, rep)
		assert.ErrorIs(t, store.ReserveName(t.Context(), "in-flight", "507f1f77bcf86cd799439011", time.Now()), tenancy.ErrConflict, "a fresh reservation is kept")

		// An unfinished org whose lock a live process holds is left alone.
		stuck := &tenancy.Org{
			ID: "507f1f77bcf86cd799439012", Name: "Stuck", Identifier: "stuck", TenantCollection: "tenant_stuck",
			AdminID: "507f191e810c19729de860eb", AdminEmail: "s@stuck.com", State: tenancy.OrgCreating,
			CreatedAt: time.Now().Add(-time.Hour), ModifiedAt: time.Now().Add(-time.Hour),
		}
		require.NoError(t, store.CreateOrg(t.Context(), stuck))
		farFuture := time.Now().Add(24 * time.Hour)
		require.NoError(t, store.LockOrg(t.Context(), stuck.ID, "live", farFuture, time.Now()))

		// Past the lease, and not the org's name or target: released.
		later := func() time.Time { return time.Now().Add(tenancy.DefaultOperationLease + time.Minute) }
		rep, err = newManager(t, store, tenancy.WithClock(later)).Recover(t.Context())
		require.NoError(t, err)
		assert.Equal(t, tenancy.RecoveryReport{NamesReleased: 1, Busy: 1}, rep)
		_, err = store.OrgByID(t.Context(), stuck.ID)
		assert.NoError(t, err, "the locked org is untouched")
		_, err = m.OrgByName(t.Context(), "Acme Corporation")
		assert.NoError(t, err, "the org's own name is kept")
	})
}

// TestRenameOntoForeignCollection renames onto a name whose tenant
// collection already exists without an org (left by another application):
// the rename is refused and the org stays usable.
func TestRenameOntoForeignCollection(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		m := newManager(t, store)
		org := createAcme(t, m)
		require.NoError(t, putDoc(ctx, store, "tenant_foreign_corp", map[string]any{"theirs": true}))

		_, err := m.RenameOrg(ctx, org.ID, "Foreign Corp")
		var cerr *tenancy.ConflictError
		require.ErrorAs(t, err, &cerr)
		assert.Equal(t, "organization_name", cerr.Field)

		got, err := m.OrgByID(ctx, org.ID)
		require.NoError(t, err)
		assert.Equal(t, tenancy.OrgActive, got.State)
		n, err := store.CountTenantDocuments(ctx, "tenant_foreign_corp")
		require.NoError(t, err)
		assert.Equal(t, int64(1), n, "the foreign collection is untouched")
		_, err = m.RenameOrg(ctx, org.ID, "Acme Elsewhere")
		assert.NoError(t, err, "the org can still be renamed")
		_, err = m.CreateOrg(ctx, tenancy.CreateOrgParams{Name: "Foreign Corp", AdminEmail: "f@foreign.com", AdminPassword: "password123"})
		assert.ErrorAs(t, err, &cerr, "create refuses the foreign collection too")
		require.NoError(t, m.DeleteOrg(ctx, org.ID))
		n, err = store.CountTenantDocuments(ctx, "tenant_foreign_corp")
		require.NoError(t, err)
		assert.Equal(t, int64(1), n, "still untouched")
	})
}

// TestRecoverKeepsForeignCollection crashes a create that found another
// application's collection under its name before its rollback ran:
// recovery removes the org and keeps the collection.
func TestRecoverKeepsForeignCollection(t *testing.T) {
	eachCrash(t, []fault{{"DeleteOrg", 1}}, func(t *testing.T, store testStore, f fault, after bool) {
		ctx := t.Context()
		require.NoError(t, putDoc(ctx, store, "tenant_acme_corporation", map[string]any{"theirs": 1}))
		crashAndRecover(t, store, f, after, func(*tenancy.Manager) {}, func(m *tenancy.Manager) error {
			_, err := m.CreateOrg(ctx, tenancy.CreateOrgParams{Name: "Acme Corporation", AdminEmail: "admin@acme.com", AdminPassword: "MySecurePassword123"})
			return err
		})
		n, err := store.CountTenantDocuments(ctx, "tenant_acme_corporation")
		require.NoError(t, err)
		assert.Equal(t, int64(1), n, "the foreign collection is kept")
		_, err = store.OrgByIdentifier(ctx, "acme-corporation")
		assert.ErrorIs(t, err, tenancy.ErrNotFound, "the unfinished org is gone")
	})
}

// TestStalledHolderLosesLease freezes a process mid-rename (a command
// monitor holds every command of its client from the collection move on,
// its lease renewals too), lets another process's recovery take the lock
// over once the lease runs out and settle the rename, then thaws the
// frozen one: it must stop with ErrLeaseLost, having changed nothing
// more, not even by the command it was about to send.
func TestStalledHolderLosesLease(t *testing.T) {
	t.Parallel()
	const lease = 2 * time.Second
	var frozen atomic.Bool
	var frozenAt atomic.Int64
	thaw := make(chan struct{})
	monitor := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName == "renameCollection" && frozen.CompareAndSwap(false, true) {
			frozenAt.Store(time.Now().UnixNano())
		}
		if frozen.Load() {
			<-thaw
		}
	}}
	db := mongotest.NewDatabase(t)
	stalledClient, err := mongo.Connect(options.Client().ApplyURI(mongotest.URI(t)).SetMonitor(monitor))
	require.NoError(t, err)
	var once sync.Once
	thawOnce := func() { once.Do(func() { close(thaw) }) }
	t.Cleanup(func() { thawOnce(); _ = stalledClient.Disconnect(context.Background()) })
	store := newStore(t, db)
	require.NoError(t, store.EnsureIndexes(t.Context()))
	m := newManager(t, store, tenancy.WithOperationLease(lease))
	org := createAcme(t, m)
	for i := range 41 {
		require.NoError(t, putDoc(t.Context(), store, org.TenantCollection, map[string]any{"i": i}))
	}

	stalled := newManager(t, newStore(t, stalledClient.Database(db.Name())), tenancy.WithOperationLease(lease))
	renamed := make(chan error, 1)
	go func() {
		_, err := stalled.RenameOrg(t.Context(), org.ID, "Acme Global Inc")
		renamed <- err
	}()
	require.Eventually(t, frozen.Load, 30*time.Second, time.Millisecond, "the rename reached the collection move")

	// The other process settles the rename once the lease has run out,
	// and not before.
	var settledAfter time.Duration
	for {
		rep, err := m.RecoverPending(t.Context())
		require.NoError(t, err)
		if rep.RenamesSettled == 1 {
			settledAfter = time.Since(time.Unix(0, frozenAt.Load()))
			break
		}
		require.Equal(t, 1, rep.Busy, "the frozen holder's lease still holds")
		require.Less(t, time.Since(time.Unix(0, frozenAt.Load())), 3*lease, "the lease ran out")
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("recovery took the rename over %v after its holder froze (lease %v)", settledAfter.Round(time.Millisecond), lease)
	assert.Greater(t, settledAfter, lease/2, "not while the lease held")
	after, err := store.OrgByID(t.Context(), org.ID)
	require.NoError(t, err)
	assert.Equal(t, tenancy.OrgActive, after.State)
	assert.Equal(t, "acme-corporation", after.Identifier, "rolled back: the collection had not moved")

	thawOnce()
	select {
	case err := <-renamed:
		assert.ErrorIs(t, err, tenancy.ErrLeaseLost, "the thawed holder says why it stopped")
	case <-time.After(30 * time.Second):
		t.Fatal("the thawed holder did not return")
	}
	now, err := store.OrgByID(t.Context(), org.ID)
	require.NoError(t, err)
	assert.Equal(t, after, now, "the thawed holder wrote nothing")
	n, err := store.CountTenantDocuments(t.Context(), "tenant_acme_corporation")
	require.NoError(t, err)
	assert.Equal(t, int64(42), n, "every document where the record says")
	exists, err := store.TenantCollectionExists(t.Context(), "tenant_acme_global_inc")
	require.NoError(t, err)
	assert.False(t, exists, "the thawed holder's move was never sent")
	assertJournalEmpty(t, store)
	_, err = m.RenameOrg(t.Context(), org.ID, "Acme Global Inc")
	assert.NoError(t, err, "lock and name free again")
}

// TestKeyRotation signs with a new secret while the previous one still
// verifies the tokens it signed; without it, they fail.
func TestKeyRotation(t *testing.T) {
	store := memstore.New()
	oldSecret := []byte("old-secret-of-at-least-32-bytes!!!")
	before, err := tenancy.New(store, tenancy.WithSigningSecret(oldSecret), tenancy.WithBcryptCost(tenancy.MinBcryptCost))
	require.NoError(t, err)
	createAcme(t, before)
	oldTok, err := before.Login(t.Context(), "admin@acme.com", "MySecurePassword123")
	require.NoError(t, err)

	rotated := newManager(t, store, tenancy.WithPreviousSigningSecrets(oldSecret))
	_, err = rotated.VerifyToken(oldTok.AccessToken)
	assert.NoError(t, err, "a token of the previous secret still verifies")
	newTok, err := rotated.Login(t.Context(), "admin@acme.com", "MySecurePassword123")
	require.NoError(t, err)
	_, err = before.VerifyToken(newTok.AccessToken)
	assert.ErrorIs(t, err, tenancy.ErrUnauthenticated, "the new secret signs new tokens")

	dropped := newManager(t, store)
	_, err = dropped.VerifyToken(oldTok.AccessToken)
	assert.ErrorIs(t, err, tenancy.ErrUnauthenticated, "once the previous secret is dropped")
	_, err = dropped.VerifyToken(newTok.AccessToken)
	assert.NoError(t, err)

	_, err = tenancy.New(store, tenancy.WithSigningSecret(testSecret), tenancy.WithPreviousSigningSecrets([]byte("short")))
	assert.Error(t, err, "previous secrets obey the length rule too")
	_, err = tenancy.New(store, tenancy.WithSigningSecret(testSecret), tenancy.WithLeeway(2*time.Minute))
	assert.Error(t, err, "leeway over a minute")
}

// TestAuthenticateTokenRevocations checks the stateful token check on
// both stores: a password change, a logout and the deletion of the
// organization each end a token that still verifies statelessly. With a
// cache whose entries would stay an hour, each token is checked (and
// cached) before what ends it: the Manager must see its own writes.
func TestAuthenticateTokenRevocations(t *testing.T) {
	for name, opts := range map[string][]tenancy.Option{"no cache": nil, "cache": {tenancy.WithCache(1000, time.Hour)}} {
		t.Run(name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, store testStore) { checkRevocations(t, newManager(t, store, opts...)) })
		})
	}
}

func checkRevocations(t *testing.T, m *tenancy.Manager) {
	t.Helper()
	ctx := t.Context()
	org := createAcme(t, m)
	tok, err := m.Login(ctx, "admin@acme.com", "MySecurePassword123")
	require.NoError(t, err)
	claims, err := m.AuthenticateToken(ctx, tok.AccessToken)
	require.NoError(t, err)

	_, err = m.ChangePassword(ctx, claims, "WrongPassword123", "AnotherPassword456")
	assert.ErrorIs(t, err, tenancy.ErrUnauthenticated)
	fresh, err := m.ChangePassword(ctx, claims, "MySecurePassword123", "AnotherPassword456")
	require.NoError(t, err)
	_, err = m.AuthenticateToken(ctx, tok.AccessToken)
	assert.ErrorIs(t, err, tenancy.ErrUnauthenticated, "issued before the password change")
	_, err = m.VerifyToken(tok.AccessToken)
	assert.NoError(t, err, "the stateless check cannot know")

	freshClaims, err := m.AuthenticateToken(ctx, fresh.AccessToken)
	require.NoError(t, err)
	require.NoError(t, m.Logout(ctx, freshClaims))
	_, err = m.AuthenticateToken(ctx, fresh.AccessToken)
	assert.ErrorIs(t, err, tenancy.ErrUnauthenticated, "logged out")

	last, err := m.Login(ctx, "admin@acme.com", "AnotherPassword456")
	require.NoError(t, err)
	_, err = m.AuthenticateToken(ctx, last.AccessToken)
	require.NoError(t, err)
	require.NoError(t, m.DeleteOrg(ctx, org.ID))
	_, err = m.AuthenticateToken(ctx, last.AccessToken)
	assert.ErrorIs(t, err, tenancy.ErrUnauthenticated, "organization deleted")
}

// TestLoginBackoffLimits checks that the back-off saturates at its
// maximum however many failures pile up, and that failures older than
// FailureMemory are forgotten.
func TestLoginBackoffLimits(t *testing.T) {
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m := newManager(t, memstore.New(), tenancy.WithClock(func() time.Time { return clock }),
		tenancy.WithLoginBackoff(1, time.Hour, 12*time.Hour))
	createAcme(t, m)
	for i := range 40 {
		// Past any wait, so that this failure is checked and counted.
		clock = clock.Add(12*time.Hour + time.Minute)
		_, err := m.Login(t.Context(), "admin@acme.com", "WrongPassword123")
		require.ErrorIs(t, err, tenancy.ErrUnauthenticated, "try %d", i)
		_, err = m.Login(t.Context(), "admin@acme.com", "MySecurePassword123")
		var retry *tenancy.RetryError
		require.ErrorAs(t, err, &retry, "after %d failures in a row", i+1)
		assert.Positive(t, retry.After, "a long run of failures must not overflow into no wait")
		assert.LessOrEqual(t, retry.After, 12*time.Hour)
	}
	clock = clock.Add(tenancy.FailureMemory + time.Minute)
	_, err := m.Login(t.Context(), "admin@acme.com", "MySecurePassword123")
	assert.NoError(t, err, "failures older than a day are forgotten")
}

// TestRecoverExpiresLoginAttempts fails logins for emails without an
// account, which leave one login_attempts record each, and checks that the
// recovery pass removes them once FailureMemory has passed (FerretDB has
// no TTL index to do it), and only then.
func TestRecoverExpiresLoginAttempts(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		m := newManager(t, store, tenancy.WithClock(func() time.Time { return clock }))
		emails := []string{"ghost1@example.com", "ghost2@example.com", "ghost3@example.com"}
		for _, e := range emails {
			_, err := m.Login(ctx, e, "WrongPassword123")
			require.ErrorIs(t, err, tenancy.ErrUnauthenticated)
			n, _, err := store.LoginFailures(ctx, e)
			require.NoError(t, err)
			require.Equal(t, 1, n, "a record for %s", e)
		}

		clock = clock.Add(tenancy.FailureMemory - time.Minute)
		rep, err := m.Recover(ctx)
		require.NoError(t, err)
		assert.Zero(t, rep.Expired, "records younger than FailureMemory are kept")
		clock = clock.Add(2 * time.Minute)
		rep, err = m.Recover(ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(len(emails)), rep.Expired)
		for _, e := range emails {
			n, _, err := store.LoginFailures(ctx, e)
			require.NoError(t, err)
			assert.Zero(t, n, "the record for %s is gone", e)
		}
	})
}

// TestDummyHashBuiltAtStart checks that the hash a login for an unknown
// email is compared with exists once New returns, at the configured cost,
// and that no password matches it: the first such login must not build it
// outside the hash slots (at a high cost every login would wait behind it).
func TestDummyHashBuiltAtStart(t *testing.T) {
	for _, cost := range []int{tenancy.MinBcryptCost, tenancy.MaxBcryptCost} {
		m, err := tenancy.New(memstore.New(), tenancy.WithSigningSecret(testSecret), tenancy.WithBcryptCost(cost))
		require.NoError(t, err)
		h := tenancy.DummyHash(m)
		require.NotEmpty(t, h, "built by New")
		got, err := bcrypt.Cost(h)
		require.NoError(t, err)
		assert.Equal(t, cost, got)
		if cost == tenancy.MinBcryptCost {
			assert.ErrorIs(t, bcrypt.CompareHashAndPassword(h, []byte("tenancy: no such admin account")), bcrypt.ErrMismatchedHashAndPassword)
		}
	}
}

// TestOrgBeingDeletedIsGoneForEveryReader leaves an organization marked
// deleting under a lock another, live process holds: OrgByName, login, the
// organization's tokens and its tenant calls all answer that it is gone,
// at once.
func TestOrgBeingDeletedIsGoneForEveryReader(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		m := newManager(t, store)
		org := createAcme(t, m)
		doc, err := m.Tenant(org.ID).Insert(ctx, map[string]any{"n": 1})
		require.NoError(t, err)
		tok, err := m.Login(ctx, "admin@acme.com", "MySecurePassword123")
		require.NoError(t, err)

		require.NoError(t, store.LockOrg(ctx, org.ID, "live", time.Now().Add(time.Hour), time.Now()))
		rec, err := store.OrgByID(ctx, org.ID)
		require.NoError(t, err)
		rec.State = tenancy.OrgDeleting
		require.NoError(t, store.UpdateOrg(ctx, rec))

		// A reader that waited for the deletion would hang: bound it.
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		start := time.Now()
		_, err = m.OrgByName(ctx, "Acme Corporation")
		assert.ErrorIs(t, err, tenancy.ErrNotFound, "OrgByName")
		_, err = m.OrgByID(ctx, org.ID)
		assert.ErrorIs(t, err, tenancy.ErrNotFound, "OrgByID")
		_, err = m.Login(ctx, "admin@acme.com", "MySecurePassword123")
		assert.ErrorIs(t, err, tenancy.ErrUnauthenticated, "Login")
		_, err = m.AuthenticateToken(ctx, tok.AccessToken)
		assert.ErrorIs(t, err, tenancy.ErrUnauthenticated, "AuthenticateToken")
		_, err = m.Tenant(org.ID).Get(ctx, doc.ID)
		assert.ErrorIs(t, err, tenancy.ErrNotFound, "a tenant call")
		assert.Less(t, time.Since(start), 5*time.Second, "answered without waiting for the deletion")
	})
}

// TestUnsettleableRenameIsNotRetriedEveryTick drops both collections of
// an interrupted rename, as an operator might by hand: recovery reports
// it, then leaves it alone until the next full pass instead of locking
// and failing on it every tick.
func TestUnsettleableRenameIsNotRetriedEveryTick(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) {
		ctx := t.Context()
		m := newManager(t, store)
		org := createAcme(t, m)
		dying := &failingStore{testStore: store, method: "RenameTenantCollection", nth: 1, crash: true}
		_, _ = newManager(t, dying).RenameOrg(ctx, org.ID, "Acme Global Inc")
		require.NoError(t, store.DropTenantCollection(ctx, "tenant_acme_corporation"))

		later := newManager(t, store, tenancy.WithClock(func() time.Time { return time.Now().Add(time.Minute) }))
		_, err := later.RecoverPending(ctx)
		assert.ErrorContains(t, err, "both missing", "reported")
		lockCalls := &failingStore{testStore: store, method: "none"}
		skipping := newManager(t, lockCalls, tenancy.WithClock(func() time.Time { return time.Now().Add(time.Minute) }))
		_, err = skipping.RecoverPending(ctx)
		assert.ErrorContains(t, err, "both missing", "a new Manager tries once")
		before := lockCalls.count("LockOrg")
		_, err = skipping.RecoverPending(ctx)
		assert.NoError(t, err, "then skips it")
		assert.Equal(t, before, lockCalls.count("LockOrg"), "without locking the org")
		_, err = skipping.Recover(ctx)
		assert.ErrorContains(t, err, "both missing", "the full pass tries again")
	})
}

// newStore is mongostore.New that fails the test on an error.
func newStore(t testing.TB, db *mongo.Database, opts ...mongostore.Option) *mongostore.Store {
	t.Helper()
	s, err := mongostore.New(db, opts...)
	require.NoError(t, err)
	return s
}

func (s *failingStore) AddMembership(ctx context.Context, mb *tenancy.Membership) error {
	return s.call("AddMembership", func() error { return s.testStore.AddMembership(ctx, mb) })
}

func (s *failingStore) DeleteMembership(ctx context.Context, org tenancy.OrgID, admin tenancy.AdminID) error {
	return s.call("DeleteMembership", func() error { return s.testStore.DeleteMembership(ctx, org, admin) })
}

func (s *failingStore) SetMemberRole(ctx context.Context, org tenancy.OrgID, admin tenancy.AdminID, role tenancy.Role) error {
	return s.call("SetMemberRole", func() error { return s.testStore.SetMemberRole(ctx, org, admin, role) })
}

func (s *failingStore) SetAdminHome(ctx context.Context, id tenancy.AdminID, org tenancy.OrgID) error {
	return s.call("SetAdminHome", func() error { return s.testStore.SetAdminHome(ctx, id, org) })
}

func (s *failingStore) DeleteInvitation(ctx context.Context, id string) error {
	return s.call("DeleteInvitation", func() error { return s.testStore.DeleteInvitation(ctx, id) })
}

func (s *failingStore) CreateInvitation(ctx context.Context, inv *tenancy.Invitation) error {
	return s.call("CreateInvitation", func() error { return s.testStore.CreateInvitation(ctx, inv) })
}

func (s *failingStore) AppendEvent(ctx context.Context, ev *tenancy.Event, pending bool) error {
	return s.call("AppendEvent", func() error { return s.testStore.AppendEvent(ctx, ev, pending) })
}

func (s *failingStore) DeleteEvents(ctx context.Context, org tenancy.OrgID) error {
	return s.call("DeleteEvents", func() error { return s.testStore.DeleteEvents(ctx, org) })
}

func (s *failingStore) RevokeToken(ctx context.Context, jti string, expires time.Time) error {
	return s.call("RevokeToken", func() error { return s.testStore.RevokeToken(ctx, jti, expires) })
}
