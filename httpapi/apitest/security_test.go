package apitest_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/httpapi"
)

// dbDigest hashes every document of every collection of e's database,
// so that a test can show a request changed nothing.
func dbDigest(t *testing.T, e *env) string {
	t.Helper()
	db := e.store.Collection("x").Database()
	names, err := db.ListCollectionNames(t.Context(), bson.D{})
	require.NoError(t, err)
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		cur, err := db.Collection(n).Find(t.Context(), bson.D{})
		require.NoError(t, err)
		var docs []string
		for cur.Next(t.Context()) {
			docs = append(docs, cur.Current.String())
		}
		require.NoError(t, cur.Err())
		sort.Strings(docs)
		fmt.Fprintf(h, "%s:%v\n", n, docs)
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// TestHostileRequests sends tokens that must not verify and bodies, paths
// and queries that must not get through, and checks that each gets its
// 4xx with problem details, never a 5xx, and that the database is left
// exactly as it was.
func TestHostileRequests(t *testing.T) {
	e := newEnvWith(t, nil, []httpapi.Option{httpapi.WithLoginRateLimit(0, 0)})
	a := create(t, e.h, "Acme Corporation", "admin@acme.com", "MySecurePassword123")
	tokA := login(t, e.h, "admin@acme.com", "MySecurePassword123")
	create(t, e.h, "Globex", "admin@globex.com", "MySecurePassword123")
	tokB := login(t, e.h, "admin@globex.com", "MySecurePassword123")
	r := do(t, e.h, call{method: "POST", target: "/tenant/documents", body: map[string]any{"secret": "B's"}, token: tokB})
	require.Equal(t, http.StatusCreated, r.status)
	docB := r.body["id"].(string)

	// Tokens that were good once.
	create(t, e.h, "Gone Inc", "admin@gone.com", "MySecurePassword123")
	tokGone := login(t, e.h, "admin@gone.com", "MySecurePassword123")
	require.Equal(t, http.StatusOK, do(t, e.h, call{method: "DELETE", target: "/org/delete", token: tokGone, body: map[string]string{"organization_name": "Gone Inc"}}).status)
	create(t, e.h, "Changed Inc", "admin@changed.com", "MySecurePassword123")
	tokChanged := login(t, e.h, "admin@changed.com", "MySecurePassword123")
	require.Equal(t, http.StatusOK, do(t, e.h, call{method: "PUT", target: "/admin/password", token: tokChanged,
		body: map[string]string{"current_password": "MySecurePassword123", "new_password": "AnotherPassword456"}}).status)
	tokOut := login(t, e.h, "admin@acme.com", "MySecurePassword123")
	require.Equal(t, http.StatusOK, do(t, e.h, call{method: "POST", target: "/admin/logout", token: tokOut}).status)

	// Forged tokens.
	claims := func() jwt.MapClaims {
		now := time.Now()
		return jwt.MapClaims{"admin_id": a["id"], "org_id": a["id"], "email": "admin@acme.com", "sub": a["id"],
			"iss": tenancy.DefaultIssuer, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "0123456789abcdef01234567"}
	}
	claimsA, err := e.m.VerifyToken(tokA)
	require.NoError(t, err)
	realClaims := func() jwt.MapClaims {
		c := claims()
		c["admin_id"], c["sub"], c["org_id"] = string(claimsA.AdminID), string(claimsA.AdminID), string(claimsA.OrgID)
		return c
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		require.NoError(t, err)
		return s
	}
	without := func(k string) jwt.MapClaims { c := realClaims(); delete(c, k); return c }
	with := func(k string, v any) jwt.MapClaims { c := realClaims(); c[k] = v; return c }
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	parts := strings.Split(tokA, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), string(claimsA.OrgID), "000000000000000000000000", 1))) + "." + parts[2]

	badTokens := map[string]string{
		"alg none":                  sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, realClaims()),
		"RS256 token":               sign(jwt.SigningMethodRS256, rsaKey, realClaims()),
		"EdDSA token":               sign(jwt.SigningMethodEdDSA, edKey, realClaims()),
		"HS384 with the secret":     sign(jwt.SigningMethodHS384, testSecret, realClaims()),
		"tampered payload":          tampered,
		"wrong key":                 sign(jwt.SigningMethodHS256, []byte("another-secret-that-is-32-bytes-long!"), realClaims()),
		"expired":                   sign(jwt.SigningMethodHS256, testSecret, with("exp", time.Now().Add(-2*time.Minute).Unix())),
		"missing exp":               sign(jwt.SigningMethodHS256, testSecret, without("exp")),
		"wrong iss":                 sign(jwt.SigningMethodHS256, testSecret, with("iss", "evil")),
		"after org delete":          tokGone,
		"after password change":     tokChanged,
		"after logout":              tokOut,
		"no signature":              parts[0] + "." + parts[1] + ".",
		"garbage":                   "definitely.not.a-token",
		"megabyte":                  strings.Repeat("a", 1<<20),
		"forged admin of other org": sign(jwt.SigningMethodHS256, []byte("guessed-secret-guessed-secret-guessed"), with("org_id", "000000000000000000000000")),
	}
	var tests []struct {
		desc   string
		c      call
		status int
	}
	add := func(desc string, status int, c call) {
		tests = append(tests, struct {
			desc   string
			c      call
			status int
		}{desc, c, status})
	}
	for name, tok := range badTokens {
		add("token "+name+" on tenant documents", 401, call{method: "GET", target: "/tenant/documents", token: tok})
		add("token "+name+" on delete", 401, call{method: "DELETE", target: "/org/delete", token: tok, body: map[string]string{"organization_name": "Acme Corporation"}})
	}
	add("token of org A on org B's delete", 403, call{method: "DELETE", target: "/org/delete", token: tokA, body: map[string]string{"organization_name": "Globex"}})
	add("token of org A on org B's document", 404, call{method: "GET", target: "/tenant/documents/" + docB, token: tokA})
	add("token of org A deleting org B's document", 404, call{method: "DELETE", target: "/tenant/documents/" + docB, token: tokA})
	add("other admin's credentials on update", 403, call{method: "PUT", target: "/org/update", token: tokA,
		body: map[string]string{"organization_name": "Stolen", "email": "admin@globex.com", "password": "MySecurePassword123"}})

	operator := map[string]any{"$ne": nil}
	for _, f := range []string{"organization_name", "email", "password"} {
		body := map[string]any{"organization_name": "Evil Corp", "email": "evil@evil.com", "password": "EvilPassword123"}
		body[f] = operator
		add("operator in create."+f, 400, call{method: "POST", target: "/org/create", body: body})
		body2 := map[string]any{"organization_name": "Evil Corp", "email": "admin@acme.com", "password": "MySecurePassword123"}
		body2[f] = operator
		add("operator in update."+f, 400, call{method: "PUT", target: "/org/update", body: body2, token: tokA})
	}
	add("operator in login.email", 400, call{method: "POST", target: "/admin/login", body: map[string]any{"email": operator, "password": "MySecurePassword123"}})
	add("operator in login.password", 400, call{method: "POST", target: "/admin/login", body: map[string]any{"email": "admin@acme.com", "password": operator}})
	add("operator in delete.organization_name", 400, call{method: "DELETE", target: "/org/delete", token: tokA, body: map[string]any{"organization_name": operator}})
	add("operator in password change", 400, call{method: "PUT", target: "/admin/password", token: tokA, body: map[string]any{"current_password": operator, "new_password": "NewPassword123"}})
	add("array as email", 400, call{method: "POST", target: "/admin/login", body: map[string]any{"email": []string{"admin@acme.com"}, "password": "MySecurePassword123"}})
	add("array body", 400, call{method: "POST", target: "/org/create", body: `[{"organization_name":"x"}]`, invalidRequest: true})
	add("null fields", 400, call{method: "POST", target: "/org/create", body: `{"organization_name":null,"email":null,"password":null}`, invalidRequest: true})
	add("number as name", 400, call{method: "POST", target: "/org/create", body: map[string]any{"organization_name": 42, "email": "x@evil.com", "password": "EvilPassword123"}})
	add("huge name", 400, call{method: "POST", target: "/org/create", body: map[string]any{"organization_name": strings.Repeat("n", 5000), "email": "x@evil.com", "password": "EvilPassword123"}})
	add("huge email", 400, call{method: "POST", target: "/admin/login", body: map[string]any{"email": strings.Repeat("e", 300) + "@evil.com", "password": "EvilPassword123"}})
	add("invalid UTF-8", 400, call{method: "POST", target: "/org/create", body: "{\"organization_name\":\"\xff\xfe\",\"email\":\"x@evil.com\",\"password\":\"EvilPassword123\"}"})
	add("73-byte password", 400, call{method: "POST", target: "/org/create", body: map[string]any{"organization_name": "Evil Corp", "email": "x@evil.com", "password": strings.Repeat("p", 73)}})
	add("73-byte new password", 400, call{method: "PUT", target: "/admin/password", token: tokA, body: map[string]any{"current_password": "MySecurePassword123", "new_password": strings.Repeat("p", 73)}})
	add("oversized body", 413, call{method: "POST", target: "/org/create", body: map[string]any{"organization_name": strings.Repeat("n", httpapi.DefaultMaxBodyBytes)}})
	add("wrong content type", 415, call{method: "POST", target: "/admin/login", body: "email=admin@acme.com&password=x", contentType: "application/x-www-form-urlencoded"})
	add("query operator", 400, call{method: "GET", target: "/org/get?organization_name[$ne]=x", invalidRequest: true})
	add("name of dots and slashes", 400, call{method: "GET", target: "/org/get?organization_name=..%2F..%2F", invalidRequest: false})
	add("traversal in document id", 400, call{method: "GET", target: "/tenant/documents/..%2F..%2Forg_registry", token: tokA})
	add("collection name as document id", 400, call{method: "GET", target: "/tenant/documents/org_registry", token: tokA, invalidRequest: true})
	add("negative page size", 400, call{method: "GET", target: "/tenant/documents?limit=-1", token: tokA})
	add("NUL in page cursor", 400, call{method: "GET", target: "/tenant/documents?after=%00", token: tokA})
	add("repeated query parameter", 404, call{method: "GET", target: "/org/get?organization_name=Nobody&organization_name=Acme%20Corporation"})

	require.GreaterOrEqual(t, len(tests), 40)
	t.Logf("%d hostile requests", len(tests))
	before := dbDigest(t, e)
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			tt.c.hostile = true
			r := do(t, e.h, tt.c)
			assert.Equal(t, tt.status, r.status, "%s", r.raw)
			assert.Less(t, r.status, 500)
		})
	}
	assert.Equal(t, before, dbDigest(t, e), "no hostile request changed the database")
}

// fakeClock is a clock tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *fakeClock) now() time.Time         { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) add(d time.Duration)    { c.ns.Add(int64(d)) }
func (c *fakeClock) option() tenancy.Option { return tenancy.WithClock(c.now) }

// TestLoginBackoff fails one account's login ten times in a row: the next
// try, even with the right password, gets 429 with Retry-After, while
// another account logs in; after the back-off a success resets the count.
func TestLoginBackoff(t *testing.T) {
	clock := newFakeClock()
	e := newEnvWith(t, []tenancy.Option{clock.option()}, []httpapi.Option{httpapi.WithLoginRateLimit(0, 0)})
	create(t, e.h, "Acme Corporation", "admin@acme.com", "MySecurePassword123")
	create(t, e.h, "Globex", "admin@globex.com", "MySecurePassword123")
	tok := login(t, e.h, "admin@acme.com", "MySecurePassword123")
	creds := func(email, password string) map[string]string {
		return map[string]string{"email": email, "password": password}
	}
	for i := range 10 {
		r := do(t, e.h, call{method: "POST", target: "/admin/login", body: creds("admin@acme.com", "WrongPassword123")})
		require.Equal(t, http.StatusUnauthorized, r.status, "failure %d", i+1)
	}
	r := do(t, e.h, call{method: "POST", target: "/admin/login", body: creds("admin@acme.com", "MySecurePassword123")})
	assert.Equal(t, http.StatusTooManyRequests, r.status, "the right password during the back-off")
	assert.Equal(t, "1", r.header.Get("Retry-After"))
	r = do(t, e.h, call{method: "PUT", target: "/org/update", token: tok, body: map[string]string{
		"organization_name": "Acme 2", "email": "admin@acme.com", "password": "MySecurePassword123"}})
	assert.Equal(t, http.StatusTooManyRequests, r.status, "re-authentication is throttled alike")
	r = do(t, e.h, call{method: "PUT", target: "/admin/password", token: tok, body: map[string]string{
		"current_password": "MySecurePassword123", "new_password": "AnotherPassword456"}})
	assert.Equal(t, http.StatusTooManyRequests, r.status, "so is the password check of a password change")
	login(t, e.h, "admin@globex.com", "MySecurePassword123")

	// Unknown addresses are throttled the same way: no account oracle.
	for range 10 {
		require.Equal(t, http.StatusUnauthorized, do(t, e.h, call{method: "POST", target: "/admin/login", body: creds("nobody@acme.com", "WrongPassword123")}).status)
	}
	assert.Equal(t, http.StatusTooManyRequests, do(t, e.h, call{method: "POST", target: "/admin/login", body: creds("nobody@acme.com", "WrongPassword123")}).status)

	clock.add(time.Second)
	login(t, e.h, "admin@acme.com", "MySecurePassword123")
	r = do(t, e.h, call{method: "POST", target: "/admin/login", body: creds("admin@acme.com", "WrongPassword123")})
	assert.Equal(t, http.StatusUnauthorized, r.status, "the success reset the count")

	// Each failure past ten doubles the wait.
	for range 9 {
		do(t, e.h, call{method: "POST", target: "/admin/login", body: creds("admin@acme.com", "WrongPassword123")})
	}
	clock.add(time.Second)
	do(t, e.h, call{method: "POST", target: "/admin/login", body: creds("admin@acme.com", "WrongPassword123")})
	r = do(t, e.h, call{method: "POST", target: "/admin/login", body: creds("admin@acme.com", "MySecurePassword123")})
	assert.Equal(t, http.StatusTooManyRequests, r.status)
	assert.Equal(t, "2", r.header.Get("Retry-After"), "eleven failures: two seconds")
}

// TestLoginTiming compares unknown-email and wrong-password logins: the
// same status and body, and medians within 20% over 30 tries each,
// interleaved so that drift in the machine's load hits both alike.
func TestLoginTiming(t *testing.T) {
	e := newEnvWith(t, []tenancy.Option{tenancy.WithLoginBackoff(0, time.Second, time.Second)}, []httpapi.Option{httpapi.WithLoginRateLimit(0, 0)})
	create(t, e.h, "Acme Corporation", "admin@acme.com", "MySecurePassword123")
	strip := func(r reply) map[string]any {
		b := maps.Clone(r.body)
		delete(b, "request_id")
		return b
	}
	var unknown, wrong []time.Duration
	for i := range 30 {
		for _, c := range []struct {
			email string
			times *[]time.Duration
		}{{fmt.Sprintf("nobody%d@acme.com", i), &unknown}, {"admin@acme.com", &wrong}} {
			start := time.Now()
			r := do(t, e.h, call{method: "POST", target: "/admin/login", body: map[string]string{"email": c.email, "password": "WrongPassword123"}})
			*c.times = append(*c.times, time.Since(start))
			require.Equal(t, http.StatusUnauthorized, r.status)
			assert.Equal(t, map[string]any{"type": "about:blank", "title": "Unauthorized", "status": float64(401),
				"detail": "Invalid credentials", "instance": "/admin/login"}, strip(r), "one answer for both")
		}
	}
	median := func(d []time.Duration) time.Duration { s := slices.Clone(d); slices.Sort(s); return s[len(s)/2] }
	mu, mw := median(unknown), median(wrong)
	t.Logf("median login: unknown email %v, wrong password %v", mu, mw)
	ratio := float64(mu) / float64(mw)
	assert.InDelta(t, 1, ratio, 0.2, "unknown email %v vs wrong password %v", mu, mw)
}

// doParallel sends c n times at once and counts the answers by status.
// Every 503 must carry Retry-After: 1.
func doParallel(t *testing.T, h http.Handler, c call, n int) map[int]int {
	t.Helper()
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			r := do(t, h, c)
			mu.Lock()
			statuses[r.status]++
			mu.Unlock()
			if r.status == http.StatusServiceUnavailable {
				assert.Equal(t, "1", r.header.Get("Retry-After"))
			}
		})
	}
	wg.Wait()
	return statuses
}

// TestLoginOverload gives bcrypt one slot and almost no wait: of
// concurrent logins, some are refused with 503 and Retry-After, none fails
// otherwise.
func TestLoginOverload(t *testing.T) {
	e := newEnvWith(t, []tenancy.Option{tenancy.WithHashConcurrency(1), tenancy.WithHashWait(time.Millisecond)},
		[]httpapi.Option{httpapi.WithLoginRateLimit(0, 0)})
	create(t, e.h, "Acme Corporation", "admin@acme.com", "MySecurePassword123")
	tok := login(t, e.h, "admin@acme.com", "MySecurePassword123")
	calls := []call{
		{method: "POST", target: "/admin/login", body: map[string]string{"email": "admin@acme.com", "password": "MySecurePassword123"}},
		{method: "PUT", target: "/org/update", token: tok, body: map[string]string{"organization_name": "Acme Corporation", "email": "admin@acme.com", "password": "MySecurePassword123"}},
		{method: "PUT", target: "/admin/password", token: tok, body: map[string]string{"current_password": "WrongPassword123", "new_password": "AnotherPassword456"}},
	}
	for _, c := range calls {
		statuses := doParallel(t, e.h, c, 6)
		assert.Positive(t, statuses[http.StatusServiceUnavailable], "%s %s: %v", c.method, c.target, statuses)
		for s := range statuses {
			assert.Contains(t, []int{200, 401, 503}, s, "%s %s: %v", c.method, c.target, statuses)
		}
	}
}

// TestLoginRateLimitPerAddress limits logins per client address, and
// believes X-Forwarded-For only from a trusted proxy.
func TestLoginRateLimitPerAddress(t *testing.T) {
	proxy := netip.MustParsePrefix("10.0.0.0/8")
	e := newEnvWith(t, nil, []httpapi.Option{httpapi.WithLoginRateLimit(0.001, 2), httpapi.WithTrustedProxies(proxy)})
	body := map[string]string{"email": "nobody@acme.com", "password": "WrongPassword123"}
	from := func(addr, xff string) reply {
		c := call{method: "POST", target: "/admin/login", body: body, remoteAddr: addr}
		if xff != "" {
			c.headers = map[string]string{"X-Forwarded-For": xff}
		}
		return do(t, e.h, c)
	}
	assert.Equal(t, 401, from("192.0.2.1:1000", "").status)
	assert.Equal(t, 401, from("192.0.2.1:1001", "").status)
	r := from("192.0.2.1:1002", "")
	assert.Equal(t, http.StatusTooManyRequests, r.status, "third try within the burst of two")
	assert.NotEmpty(t, r.header.Get("Retry-After"))
	assert.Equal(t, 401, from("192.0.2.2:1000", "").status, "another address has its own budget")
	assert.Equal(t, http.StatusTooManyRequests, from("192.0.2.1:1003", "198.51.100.7").status, "an untrusted peer's X-Forwarded-For is ignored")

	// Behind the trusted proxy, each forwarded client has its own budget.
	for i := range 2 {
		assert.Equal(t, 401, from("10.1.2.3:80", "198.51.100.8, 10.9.9.9").status, "client behind the proxy, try %d", i)
	}
	assert.Equal(t, http.StatusTooManyRequests, from("10.1.2.3:80", "198.51.100.8:5678").status, "a forwarded address with a port is the same client")
	assert.Equal(t, 401, from("10.1.2.3:80", "198.51.100.9").status, "another client behind the same proxy")

	// IPv6 clients are limited per /64: rotating the low bits does not help.
	assert.Equal(t, 401, from("[2001:db8:1:2::1]:1000", "").status)
	assert.Equal(t, 401, from("[2001:db8:1:2::2]:1000", "").status)
	assert.Equal(t, http.StatusTooManyRequests, from("[2001:db8:1:2::3]:1000", "").status, "same /64")
	assert.Equal(t, 401, from("[2001:db8:1:3::1]:1000", "").status, "another /64")
}

// TestLoginRateLimitNotANumber gives WithLoginRateLimit a rate that is
// not a finite number: New refuses it, instead of switching the limit off
// (NaN compares false with everything) or making it unlimited.
func TestLoginRateLimitNotANumber(t *testing.T) {
	m := newEnv(t).m
	for _, rate := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		h, err := httpapi.New(m, httpapi.WithLoginRateLimit(rate, 1))
		assert.ErrorContains(t, err, "login rate", "%v", rate)
		assert.Nil(t, h)
	}
}

// TestPasswordChangeAndLogout revokes tokens: a password change ends the
// tokens issued before it, a logout ends the token presented.
func TestPasswordChangeAndLogout(t *testing.T) {
	e := newEnvWith(t, nil, []httpapi.Option{httpapi.WithLoginRateLimit(0, 0)})
	create(t, e.h, "Acme Corporation", "admin@acme.com", "MySecurePassword123")
	old := login(t, e.h, "admin@acme.com", "MySecurePassword123")
	list := func(tok string) int {
		return do(t, e.h, call{method: "GET", target: "/tenant/documents", token: tok}).status
	}
	require.Equal(t, 200, list(old))

	change := func(current, next string) reply {
		return do(t, e.h, call{method: "PUT", target: "/admin/password", token: old, body: map[string]string{"current_password": current, "new_password": next},
			invalidRequest: len(next) < 8})
	}
	r := change("MySecurePassword123", "short")
	assert.Equal(t, 400, r.status)
	assert.Equal(t, []string{"new_password"}, fields(r))
	assert.Equal(t, 401, change("WrongPassword123", "AnotherPassword456").status, "the current password is required")
	r = do(t, e.h, call{method: "PUT", target: "/admin/password", token: old, body: map[string]string{"current_password": "x"}, invalidRequest: true})
	assert.Equal(t, 400, r.status)
	r = do(t, e.h, call{method: "PUT", target: "/admin/password", token: old, body: map[string]string{"current_password": strings.Repeat("x", httpapi.DefaultMaxBodyBytes)}})
	assert.Equal(t, 413, r.status)
	r = do(t, e.h, call{method: "PUT", target: "/admin/password", token: old, body: "current_password=x", contentType: "text/plain"})
	assert.Equal(t, 415, r.status)
	r = change("MySecurePassword123", "AnotherPassword456")
	require.Equal(t, 200, r.status, "%s", r.raw)
	fresh := r.body["access_token"].(string)

	assert.Equal(t, 401, list(old), "tokens from before the change are revoked")
	assert.Equal(t, 200, list(fresh))
	assert.Equal(t, 401, do(t, e.h, call{method: "POST", target: "/admin/login", body: map[string]string{"email": "admin@acme.com", "password": "MySecurePassword123"}}).status)
	other := login(t, e.h, "admin@acme.com", "AnotherPassword456")

	r = do(t, e.h, call{method: "POST", target: "/admin/logout", token: fresh})
	require.Equal(t, 200, r.status)
	assert.Equal(t, 401, list(fresh), "the token logged out with is revoked")
	assert.Equal(t, 401, do(t, e.h, call{method: "POST", target: "/admin/logout", token: fresh}).status)
	assert.Equal(t, 200, list(other), "other tokens stay good")
	assert.Equal(t, 401, do(t, e.h, call{method: "POST", target: "/admin/logout", invalidRequest: true}).status)

	// The stateless middleware trusts the signature alone, by design.
	stateless := httpapi.RequireValidToken(e.m)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	req, err := http.NewRequest("GET", "/", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+fresh)
	rec := httptest.NewRecorder()
	stateless.ServeHTTP(rec, req)
	assert.Equal(t, 204, rec.Code)
}

// TestJWKS serves no keys with HMAC signing, and the Ed25519 public keys,
// current and previous, with EdDSA: another service verifies a token with
// them alone.
func TestJWKS(t *testing.T) {
	e := newEnv(t)
	r := do(t, e.h, call{method: "GET", target: "/.well-known/jwks.json"})
	require.Equal(t, 200, r.status)
	assert.Empty(t, r.body["keys"])

	prevPub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	ed := newEnvSigned(t, tenancy.WithEd25519Key(priv), []tenancy.Option{tenancy.WithPreviousEd25519Keys(prevPub)}, []httpapi.Option{httpapi.WithLoginRateLimit(0, 0)})
	create(t, ed.h, "Acme Corporation", "admin@acme.com", "MySecurePassword123")
	tok := login(t, ed.h, "admin@acme.com", "MySecurePassword123")
	r = do(t, ed.h, call{method: "GET", target: "/.well-known/jwks.json"})
	require.Equal(t, 200, r.status)
	var set struct {
		Keys []struct{ Kty, Crv, X, Kid, Alg string }
	}
	require.NoError(t, json.Unmarshal(r.raw, &set))
	require.Len(t, set.Keys, 2, "current and previous")
	keys := map[string]ed25519.PublicKey{}
	for _, k := range set.Keys {
		assert.Equal(t, "OKP", k.Kty)
		assert.Equal(t, "EdDSA", k.Alg)
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		require.NoError(t, err)
		keys[k.Kid] = x
	}
	parsed, err := jwt.Parse(tok, func(tk *jwt.Token) (any, error) { return keys[tk.Header["kid"].(string)], nil },
		jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer(tenancy.DefaultIssuer))
	require.NoError(t, err, "verified with the published key alone")
	assert.True(t, parsed.Valid)
	assert.Equal(t, 200, do(t, ed.h, call{method: "GET", target: "/tenant/documents", token: tok}).status)
	// An HS256 token signed with the public key as secret (algorithm
	// confusion) does not verify.
	pub := priv.Public().(ed25519.PublicKey)
	c, err := ed.m.VerifyToken(tok)
	require.NoError(t, err)
	forged, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"admin_id": string(c.AdminID), "org_id": string(c.OrgID), "sub": string(c.AdminID), "iss": tenancy.DefaultIssuer,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "jti": c.ID,
	}).SignedString([]byte(pub))
	require.NoError(t, err)
	assert.Equal(t, 401, do(t, ed.h, call{method: "GET", target: "/tenant/documents", token: forged}).status)
}

// TestParallelLoginsAtBackoff sends parallel wrong logins for an address
// one failure short of its back-off: one try takes the window, the rest
// are refused without a password check, instead of all being checked.
func TestParallelLoginsAtBackoff(t *testing.T) {
	e := newEnvWith(t, []tenancy.Option{tenancy.WithLoginBackoff(3, time.Minute, time.Hour)}, []httpapi.Option{httpapi.WithLoginRateLimit(0, 0)})
	create(t, e.h, "Acme Corporation", "admin@acme.com", "MySecurePassword123")
	wrong := call{method: "POST", target: "/admin/login", body: map[string]string{"email": "admin@acme.com", "password": "WrongPassword123"}}
	for range 2 {
		require.Equal(t, http.StatusUnauthorized, do(t, e.h, wrong).status)
	}
	const tries = 40
	statuses := doParallel(t, e.h, wrong, tries)
	t.Logf("statuses of %d parallel tries: %v", tries, statuses)
	assert.Equal(t, tries, statuses[http.StatusUnauthorized]+statuses[http.StatusTooManyRequests], "401 or 429 only: %v", statuses)
	// Exactly one try got its password checked: on FerretDB, whose
	// conditional updates read and then write, because the store
	// serializes one address's claims within the process.
	assert.Equal(t, 1, statuses[http.StatusUnauthorized], "the back-off window was shared: %v", statuses)
}

// TestHashQueueSheds bounds the waiters per bcrypt slot: past the queue a
// request is refused at once with 503, without waiting.
func TestHashQueueSheds(t *testing.T) {
	e := newEnvWith(t, []tenancy.Option{tenancy.WithHashConcurrency(1), tenancy.WithHashQueue(1), tenancy.WithBcryptCost(tenancy.MinBcryptCost)},
		[]httpapi.Option{httpapi.WithLoginRateLimit(0, 0)})
	create(t, e.h, "Acme Corporation", "admin@acme.com", "MySecurePassword123")
	statuses := doParallel(t, e.h, call{method: "POST", target: "/admin/login", body: map[string]string{"email": "admin@acme.com", "password": "MySecurePassword123"}}, 8)
	assert.GreaterOrEqual(t, statuses[http.StatusServiceUnavailable], 1, "%v", statuses)
	assert.GreaterOrEqual(t, statuses[http.StatusOK], 2, "one in the slot and one queued at least: %v", statuses)
	assert.Equal(t, 8, statuses[200]+statuses[503], "%v", statuses)
}

// TestLockoutIsPerNetwork has an attacker who knows the owner's email fail
// logins from one network until it is throttled: the owner's right
// password from another network still logs in, and the attacker's network
// stays throttled. Failures spread over many networks still end in an
// account-wide back-off, past its far higher threshold.
func TestLockoutIsPerNetwork(t *testing.T) {
	// A back-off of a minute at least: the checks below take seconds
	// under the race detector.
	e := newEnvWith(t, []tenancy.Option{tenancy.WithAccountBackoff(30), tenancy.WithLoginBackoff(10, time.Minute, time.Hour)},
		[]httpapi.Option{httpapi.WithLoginRateLimit(0, 0)})
	create(t, e.h, "Acme Corporation", "admin@acme.com", "MySecurePassword123")
	login := func(addr, password string) reply {
		return do(t, e.h, call{method: "POST", target: "/admin/login", remoteAddr: addr,
			body: map[string]string{"email": "admin@acme.com", "password": password}})
	}
	statuses := map[int]int{}
	for i := range 14 {
		statuses[login(fmt.Sprintf("198.51.100.%d:4000", i+1), "WrongPassword123").status]++
	}
	assert.Equal(t, map[int]int{401: 10, 429: 4}, statuses, "one /24 is throttled after 10 failures")
	r := login("203.0.113.9:5000", "MySecurePassword123")
	assert.Equal(t, http.StatusOK, r.status, "the owner from another network: %s", r.raw)
	r = login("[2001:db8:1:2::5]:5000", "MySecurePassword123")
	assert.Equal(t, http.StatusOK, r.status, "and from an IPv6 network: %s", r.raw)
	assert.Equal(t, http.StatusTooManyRequests, login("198.51.100.200:4000", "MySecurePassword123").status,
		"the attacker's network is still throttled, even with the right password")

	// Thirty failures from thirty networks: the account-wide limit.
	for i := range 30 {
		r := login(fmt.Sprintf("192.0.%d.1:4000", i+1), "WrongPassword123")
		require.Equal(t, http.StatusUnauthorized, r.status, "failure %d from a network of its own: %s", i+1, r.raw)
	}
	r = login("203.0.113.9:5000", "MySecurePassword123")
	assert.Equal(t, http.StatusTooManyRequests, r.status, "past the account-wide threshold every network waits: %s", r.raw)
	assert.NotEmpty(t, r.header.Get("Retry-After"))
}
