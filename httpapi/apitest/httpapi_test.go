package apitest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/httpapi"
	"github.com/tenancy/tenancy/memstore"
	"github.com/tenancy/tenancy/mongostore"
	"github.com/tenancy/tenancy/mongotest"
)

func TestMain(m *testing.M) {
	mongotest.Main(m, checkCoverage)
}

// seen records the documented responses the tests produced, by
// "METHOD /path STATUS".
var seen sync.Map

// checkCoverage fails a full run of the tests that did not produce every
// response the OpenAPI document lists, so that the document and the tests
// cannot drift apart.
func checkCoverage() error {
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() != "" {
		return nil // a partial run
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]any `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(httpapi.OpenAPI, &doc); err != nil {
		return err
	}
	var missing []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			for status := range op.Responses {
				key := strings.ToUpper(method) + " " + path + " " + status
				if _, ok := seen.Load(key); !ok {
					missing = append(missing, key)
				}
			}
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("documented responses no test produced:\n  %s", strings.Join(missing, "\n  "))
	}
	return nil
}

var testSecret = []byte("http-test-secret-of-at-least-32-bytes")

// env is an API over a fresh database.
type env struct {
	m     *tenancy.Manager
	store *mongostore.Store
	h     http.Handler
}

func newEnv(t *testing.T) *env {
	return newEnvWith(t, nil, nil)
}

// newHandler is httpapi.New that fails the test on an error.
func newHandler(t testing.TB, m *tenancy.Manager, opts ...httpapi.Option) http.Handler {
	t.Helper()
	h, err := httpapi.New(m, opts...)
	require.NoError(t, err)
	return h
}

// newEnvWith is newEnv with more Manager and handler options.
func newEnvWith(t testing.TB, mopts []tenancy.Option, hopts []httpapi.Option) *env {
	t.Helper()
	return newEnvSigned(t, tenancy.WithSigningSecret(testSecret), mopts, hopts)
}

// newEnvSigned is newEnvWith with its signing key given.
func newEnvSigned(t testing.TB, key tenancy.Option, mopts []tenancy.Option, hopts []httpapi.Option) *env {
	t.Helper()
	store := newStore(t, mongotest.NewDatabase(t))
	require.NoError(t, store.EnsureIndexes(t.Context()))
	// Parallel tests under -race queue for bcrypt far longer than
	// production would: only TestLoginOverload tests the refusal.
	m, err := tenancy.New(store, append([]tenancy.Option{key, tenancy.WithBcryptCost(tenancy.MinBcryptCost),
		tenancy.WithHashWait(time.Minute)}, mopts...)...)
	require.NoError(t, err)
	return &env{m: m, store: store, h: newHandler(t, m, hopts...)}
}

var (
	docOnce sync.Once
	docV    validator.Validator
	docErr  error
)

// openAPI returns a validator for the served OpenAPI document.
func openAPI(t *testing.T) validator.Validator {
	t.Helper()
	docOnce.Do(func() {
		doc, err := libopenapi.NewDocument(httpapi.OpenAPI)
		if err != nil {
			docErr = err
			return
		}
		v, errs := validator.NewValidator(doc)
		if len(errs) > 0 {
			docErr = fmt.Errorf("%v", errs)
			return
		}
		if ok, verrs := v.ValidateDocument(); !ok {
			docErr = fmt.Errorf("document invalid: %v", describe(verrs))
			return
		}
		docV = v
	})
	require.NoError(t, docErr)
	return docV
}

func describe[E interface{ Error() string }](errs []E) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString("\n  ")
		b.WriteString(e.Error())
	}
	return b.String()
}

// call is one request of a test.
type call struct {
	method, target string
	body           any // marshalled to JSON unless a string (sent raw)
	token          string
	contentType    string // default application/json when there is a body; "none" sends none
	// invalidRequest marks requests the document itself refuses, such as a
	// missing required field; the server must refuse them too.
	invalidRequest bool
	headers        map[string]string
	remoteAddr     string
	// hostile requests are not checked against the document: some break
	// it, some do not; only the server's answer matters.
	hostile bool
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

// do sends c to h and checks the request and the response against the
// OpenAPI document: every response of a documented endpoint must match it.
func do(t *testing.T, h http.Handler, c call) reply {
	t.Helper()
	var payload []byte
	switch b := c.body.(type) {
	case nil:
	case string:
		payload = []byte(b)
	default:
		var err error
		payload, err = json.Marshal(b)
		require.NoError(t, err)
	}
	newReq := func() *http.Request {
		r := httptest.NewRequest(c.method, "http://api.test"+c.target, bytes.NewReader(payload))
		if payload != nil && c.contentType != "none" {
			ct := c.contentType
			if ct == "" {
				ct = "application/json"
			}
			r.Header.Set("Content-Type", ct)
		}
		if c.token != "" {
			r.Header.Set("Authorization", "Bearer "+c.token)
		}
		for k, v := range c.headers {
			r.Header.Set(k, v)
		}
		if c.remoteAddr != "" {
			r.RemoteAddr = c.remoteAddr
		}
		return r
	}

	v := openAPI(t)
	ok, errs := v.ValidateHttpRequestSync(newReq())
	if c.hostile {
		// Not checked.
	} else if c.invalidRequest {
		assert.False(t, ok, "the OpenAPI document accepts a request the test calls invalid: %s %s", c.method, c.target)
	} else if c.contentType == "" && len(payload) < httpapi.DefaultMaxBodyBytes {
		assert.True(t, ok, "request %s %s breaks the OpenAPI document:%s", c.method, c.target, describe(errs))
	}

	req := newReq()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)

	res.Body = io.NopCloser(bytes.NewReader(raw))
	ok, errs = v.ValidateHttpResponse(newReq(), res)
	assert.True(t, ok, "response %d to %s %s breaks the OpenAPI document:%s\n%s", res.StatusCode, c.method, c.target, describe(errs), raw)

	seen.Store(fmt.Sprintf("%s %s %d", c.method, templatePath(strings.SplitN(c.target, "?", 2)[0]), res.StatusCode), true)
	r := reply{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 && strings.Contains(res.Header.Get("Content-Type"), "json") {
		require.NoError(t, json.Unmarshal(raw, &r.body), "body: %s", raw)
	}
	assert.NotEmpty(t, res.Header.Get("X-Request-ID"), "every response carries a request id")
	if res.StatusCode >= 400 {
		assert.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
		assert.NotEmpty(t, r.body["detail"], "problem details always carry detail")
		assert.Equal(t, float64(res.StatusCode), r.body["status"])
	}
	return r
}

// templatePath maps a request path to the OpenAPI path it is an instance of.
func templatePath(path string) string {
	for prefix, template := range map[string]string{
		"/tenant/documents/": "/tenant/documents/{id}",
		"/org/invitations/":  "/org/invitations/{id}",
		"/org/members/":      "/org/members/{admin_id}",
	} {
		if rest, ok := strings.CutPrefix(path, prefix); ok && rest != "" && !strings.Contains(rest, "/") {
			return template
		}
	}
	return path
}

func fields(r reply) []string {
	var out []string
	errs, _ := r.body["errors"].([]any)
	for _, e := range errs {
		out = append(out, e.(map[string]any)["field"].(string))
	}
	return out
}

func login(t *testing.T, h http.Handler, email, password string) string {
	t.Helper()
	r := do(t, h, call{method: "POST", target: "/admin/login", body: map[string]string{"email": email, "password": password}})
	require.Equal(t, http.StatusOK, r.status, "login: %s", r.raw)
	return r.body["access_token"].(string)
}

func create(t *testing.T, h http.Handler, name, email, password string) map[string]any {
	t.Helper()
	r := do(t, h, call{method: "POST", target: "/org/create", body: map[string]string{
		"organization_name": name, "email": email, "password": password,
	}})
	require.Equal(t, http.StatusCreated, r.status, "create: %s", r.raw)
	return r.body
}

func TestHealthAndReady(t *testing.T) {
	e := newEnv(t)
	r := do(t, e.h, call{method: "GET", target: "/health"})
	assert.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, `{"status":"operational","service":"Organization Management API"}`, string(r.raw))

	r = do(t, e.h, call{method: "GET", target: "/ready"})
	assert.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "ready", r.body["status"])

	// A database that does not answer: nothing listens on port 1.
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	m, err := tenancy.New(newStore(t, client.Database("down")), tenancy.WithSigningSecret(testSecret))
	require.NoError(t, err)
	down := newHandler(t, m)
	r = do(t, down, call{method: "GET", target: "/ready"})
	assert.Equal(t, http.StatusServiceUnavailable, r.status)
	r = do(t, down, call{method: "GET", target: "/health"})
	assert.Equal(t, http.StatusOK, r.status, "liveness does not depend on the database")
}

func TestCreateOrg(t *testing.T) {
	e := newEnv(t)
	valid := map[string]string{"organization_name": "Tech Innovations Corp", "email": "admin@techcorp.com", "password": "SecurePassword123"}

	r := do(t, e.h, call{method: "POST", target: "/org/create", contentType: "none", body: map[string]string{
		"organization_name": "No Content Type", "email": "nct@example.com", "password": "SecurePassword123",
	}})
	assert.Equal(t, http.StatusCreated, r.status, "a body without Content-Type is read as JSON: %s", r.raw)

	r = do(t, e.h, call{method: "POST", target: "/org/create", body: valid})
	require.Equal(t, http.StatusCreated, r.status, string(r.raw))
	assert.Len(t, r.body["id"], 24)
	assert.Equal(t, "Tech Innovations Corp", r.body["organization_name"])
	assert.Equal(t, "tech-innovations-corp", r.body["organization_identifier"])
	assert.Equal(t, "tenant_tech_innovations_corp", r.body["tenant_collection"])
	assert.Equal(t, "admin@techcorp.com", r.body["admin_email"])

	tests := []struct {
		desc    string
		c       call
		status  int
		fields  []string
		snippet string
	}{
		{"same name, other spelling", call{body: map[string]string{"organization_name": "TECH innovations corp.", "email": "x@techcorp.com", "password": "SecurePassword123"}},
			409, []string{"organization_name"}, "already taken"},
		{"same email", call{body: map[string]string{"organization_name": "Other Corp", "email": "ADMIN@techcorp.com", "password": "SecurePassword123"}},
			409, []string{"email"}, "already registered"},
		{"empty object", call{body: map[string]string{}, invalidRequest: true},
			400, []string{"organization_name", "email", "password"}, "is required"},
		{"nulls", call{body: `{"organization_name":null,"email":null,"password":null}`, invalidRequest: true},
			400, []string{"organization_name", "email", "password"}, "is required"},
		{"operator object", call{body: map[string]any{"organization_name": map[string]any{"$ne": nil}, "email": "a@b.co", "password": "SecurePassword123"}, invalidRequest: true},
			400, []string{"organization_name"}, "must be a string"},
		{"number for email", call{body: map[string]any{"organization_name": "N Corp", "email": 42, "password": "SecurePassword123"}, invalidRequest: true},
			400, []string{"email"}, "must be a string"},
		{"several wrong types", call{body: `{"organization_name":["a"],"email":true,"password":{"$gt":""}}`, invalidRequest: true},
			400, []string{"organization_name", "email", "password"}, "must be a string"},
		{"member names are case sensitive", call{body: `{"ORGANIZATION_NAME":"Case Corp","email":"c@case.com","password":"SecurePassword123"}`, invalidRequest: true},
			400, []string{"organization_name"}, "is required"},
		{"array body", call{body: `[1,2]`, invalidRequest: true}, 400, nil, "JSON object"},
		{"whitespace body", call{body: "   ", invalidRequest: true}, 400, nil, "not valid JSON"},
		{"malformed JSON", call{body: `{"organization_name":`, invalidRequest: true}, 400, nil, "not valid JSON"},
		{"trailing data", call{body: `{"organization_name":"A","email":"a@b.co","password":"SecurePassword123"} {}`, invalidRequest: true}, 400, nil, "not valid JSON"},
		{"no body", call{invalidRequest: true}, 400, nil, "body is required"},
		{"bad email", call{body: map[string]string{"organization_name": "E Corp", "email": "not-an-email", "password": "SecurePassword123"}},
			400, []string{"email"}, "email address"},
		{"short password", call{body: map[string]string{"organization_name": "P Corp", "email": "p@p.co", "password": "short"}, invalidRequest: true},
			400, []string{"password"}, "at least 8"},
		{"73-byte password", call{body: map[string]string{"organization_name": "P Corp", "email": "p@p.co", "password": strings.Repeat("x", 73)}},
			400, []string{"password"}, "at most 72"},
		{"name without letters", call{body: map[string]string{"organization_name": "!!!", "email": "p@p.co", "password": "SecurePassword123"}},
			400, []string{"organization_name"}, "letter or digit"},
		{"wrong content type", call{body: `organization_name=x`, contentType: "application/x-www-form-urlencoded", invalidRequest: true}, 415, nil, "application/json"},
		{"oversized body", call{body: `{"organization_name":"` + strings.Repeat("a", httpapi.DefaultMaxBodyBytes) + `"}`}, 413, nil, "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			tt.c.method, tt.c.target = "POST", "/org/create"
			r := do(t, e.h, tt.c)
			assert.Equal(t, tt.status, r.status, string(r.raw))
			assert.ElementsMatch(t, tt.fields, fields(r))
			assert.Contains(t, r.body["detail"], tt.snippet)
		})
	}
}

func TestGetOrg(t *testing.T) {
	e := newEnv(t)
	created := create(t, e.h, "Acme Corporation", "admin@acme.com", "MySecurePassword123")

	r := do(t, e.h, call{method: "GET", target: "/org/get?organization_name=Acme%20Corporation"})
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, created, r.body)
	r = do(t, e.h, call{method: "GET", target: "/org/get?organization_name=acme-corporation"})
	assert.Equal(t, http.StatusOK, r.status, "lookup ignores case and punctuation")

	r = do(t, e.h, call{method: "GET", target: "/org/get", invalidRequest: true})
	assert.Equal(t, http.StatusBadRequest, r.status)
	assert.Equal(t, []string{"organization_name"}, fields(r))
	r = do(t, e.h, call{method: "GET", target: "/org/get?organization_name=Nobody%20Inc"})
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.Equal(t, "Organization not found", r.body["detail"])
	r = do(t, e.h, call{method: "GET", target: "/org/get?organization_name=%21%21%21"})
	assert.Equal(t, http.StatusBadRequest, r.status)
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	created := create(t, e.h, "Acme Corporation", "admin@acme.com", "MySecurePassword123")

	r := do(t, e.h, call{method: "POST", target: "/admin/login", body: map[string]string{"email": "admin@acme.com", "password": "MySecurePassword123"}})
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "bearer", r.body["token_type"])
	assert.Equal(t, created["id"], r.body["org_id"])
	claims, err := e.m.VerifyToken(r.body["access_token"].(string))
	require.NoError(t, err)
	assert.Equal(t, r.body["admin_id"], string(claims.AdminID))

	wrong := do(t, e.h, call{method: "POST", target: "/admin/login", body: map[string]string{"email": "admin@acme.com", "password": "WrongPassword1"}})
	unknown := do(t, e.h, call{method: "POST", target: "/admin/login", body: map[string]string{"email": "nobody@acme.com", "password": "WrongPassword1"}})
	assert.Equal(t, http.StatusUnauthorized, wrong.status)
	assert.Equal(t, http.StatusUnauthorized, unknown.status)
	assert.Equal(t, wrong.body["detail"], unknown.body["detail"], "unknown email and wrong password answer alike")

	r = do(t, e.h, call{method: "POST", target: "/admin/login", body: map[string]string{"email": "nope", "password": "x"}, invalidRequest: true})
	assert.Equal(t, http.StatusBadRequest, r.status)
	assert.ElementsMatch(t, []string{"email", "password"}, fields(r))
	r = do(t, e.h, call{method: "POST", target: "/admin/login", body: `{"email":{"$gt":""},"password":{"$gt":""}}`, invalidRequest: true})
	assert.Equal(t, http.StatusBadRequest, r.status, "operator injection is a type error")
	r = do(t, e.h, call{method: "POST", target: "/admin/login", body: `email=a`, contentType: "text/plain", invalidRequest: true})
	assert.Equal(t, http.StatusUnsupportedMediaType, r.status)
	r = do(t, e.h, call{method: "POST", target: "/admin/login", body: `{"email":"` + strings.Repeat("a", 70000) + `"}`})
	assert.Equal(t, http.StatusRequestEntityTooLarge, r.status)
}

func TestUpdateOrg(t *testing.T) {
	e := newEnv(t)
	acme := create(t, e.h, "Acme Corporation", "admin@acme.com", "MySecurePassword123")
	create(t, e.h, "Beta Labs", "admin@beta.com", "BetaPassword123")
	token := login(t, e.h, "admin@acme.com", "MySecurePassword123")
	for i := range 41 {
		require.NoError(t, e.store.AddTenantDocument(t.Context(), "tenant_acme_corporation", &tenancy.Document{ID: bson.NewObjectID().Hex(), Data: map[string]any{"n": int64(i)}}))
	}
	body := func(name, email, password string) map[string]string {
		return map[string]string{"organization_name": name, "email": email, "password": password}
	}
	update := func(c call) reply {
		c.method, c.target = "PUT", "/org/update"
		return do(t, e.h, c)
	}

	tests := []struct {
		desc   string
		c      call
		status int
		fields []string
	}{
		{"no token", call{body: body("Acme Global Inc", "admin@acme.com", "MySecurePassword123"), invalidRequest: true}, 401, nil},
		{"malformed token", call{body: body("Acme Global Inc", "admin@acme.com", "MySecurePassword123"), token: "abc.def.ghi"}, 401, nil},
		{"tampered token", call{body: body("Acme Global Inc", "admin@acme.com", "MySecurePassword123"), token: token + "x"}, 401, nil},
		{"wrong password", call{body: body("Acme Global Inc", "admin@acme.com", "WrongPassword123"), token: token}, 401, nil},
		{"unknown admin", call{body: body("Acme Global Inc", "ghost@acme.com", "MySecurePassword123"), token: token}, 401, nil},
		{"another org's admin", call{body: body("Acme Global Inc", "admin@beta.com", "BetaPassword123"), token: token}, 403, nil},
		{"bad input", call{body: body("", "bad", "short"), token: token, invalidRequest: true}, 400, []string{"organization_name", "email", "password"}},
		{"operator object", call{body: `{"organization_name":{"$ne":null},"email":"admin@acme.com","password":"MySecurePassword123"}`, token: token, invalidRequest: true}, 400, []string{"organization_name"}},
		{"name taken", call{body: body("beta labs", "admin@acme.com", "MySecurePassword123"), token: token}, 409, []string{"organization_name"}},
		{"wrong content type", call{body: "x", contentType: "text/plain", token: token, invalidRequest: true}, 415, nil},
		{"oversized body", call{body: strings.Repeat(" ", httpapi.DefaultMaxBodyBytes+1), token: token}, 413, nil},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			r := update(tt.c)
			assert.Equal(t, tt.status, r.status, string(r.raw))
			assert.ElementsMatch(t, tt.fields, fields(r))
			if tt.status == http.StatusUnauthorized {
				assert.Contains(t, r.header.Get("WWW-Authenticate"), "Bearer")
			}
		})
	}

	r := update(call{body: body("Acme Global Inc", "admin@acme.com", "MySecurePassword123"), token: token})
	require.Equal(t, http.StatusOK, r.status, string(r.raw))
	assert.Equal(t, map[string]any{
		"message":                 "Organization updated successfully",
		"previous_collection":     "tenant_acme_corporation",
		"current_collection":      "tenant_acme_global_inc",
		"documents_migrated":      float64(42),
		"organization_identifier": "acme-global-inc",
	}, r.body)
	got := do(t, e.h, call{method: "GET", target: "/org/get?organization_name=Acme%20Global%20Inc"})
	assert.Equal(t, acme["id"], got.body["id"])

	// The org vanishing under a valid token and valid credentials is a 404.
	require.NoError(t, e.store.DeleteOrg(t.Context(), tenancy.OrgID(acme["id"].(string))))
	r = update(call{body: body("Acme Again", "admin@acme.com", "MySecurePassword123"), token: token})
	assert.Equal(t, http.StatusNotFound, r.status, string(r.raw))
}

func TestDeleteOrg(t *testing.T) {
	e := newEnv(t)
	create(t, e.h, "Acme Corporation", "admin@acme.com", "MySecurePassword123")
	create(t, e.h, "Beta Labs", "admin@beta.com", "BetaPassword123")
	acme := login(t, e.h, "admin@acme.com", "MySecurePassword123")
	beta := login(t, e.h, "admin@beta.com", "BetaPassword123")
	del := func(c call) reply {
		c.method = "DELETE"
		if c.target == "" {
			c.target = "/org/delete"
		}
		return do(t, e.h, c)
	}
	name := func(n string) map[string]string { return map[string]string{"organization_name": n} }

	tests := []struct {
		desc   string
		c      call
		status int
	}{
		{"no token", call{body: name("Acme Corporation"), invalidRequest: true}, 401},
		{"bad token", call{body: name("Acme Corporation"), token: "x.y.z"}, 401},
		{"no name", call{token: acme}, 400},
		{"empty name", call{body: name(""), token: acme, invalidRequest: true}, 400},
		{"operator object", call{body: `{"organization_name":{"$ne":null}}`, token: acme, invalidRequest: true}, 400},
		{"unknown org", call{body: name("Nobody Inc"), token: acme}, 404},
		{"not a name", call{body: name("!!!"), token: acme}, 400},
		{"another org", call{body: name("Beta Labs"), token: acme}, 403},
		{"another org by query", call{target: "/org/delete?organization_name=Beta%20Labs", token: acme}, 403},
		{"wrong content type", call{body: "x", contentType: "text/plain", token: acme, invalidRequest: true}, 415},
		{"oversized body", call{body: strings.Repeat(" ", httpapi.DefaultMaxBodyBytes+1), token: acme}, 413},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			r := del(tt.c)
			assert.Equal(t, tt.status, r.status, string(r.raw))
		})
	}

	// Another operation holding the org's lock: try again later.
	claims, err := e.m.VerifyToken(acme)
	require.NoError(t, err)
	now := time.Now()
	require.NoError(t, e.store.LockOrg(t.Context(), claims.OrgID, "other-operation", now.Add(time.Minute), now))
	r := del(call{body: name("acme corporation"), token: acme})
	assert.Equal(t, http.StatusConflict, r.status, string(r.raw))
	assert.Contains(t, r.body["detail"], "in progress")
	require.NoError(t, e.store.UnlockOrg(t.Context(), claims.OrgID, "other-operation"))

	r = del(call{body: name("acme corporation"), token: acme})
	require.Equal(t, http.StatusOK, r.status, string(r.raw))
	assert.Equal(t, "Organization and all associated data have been deleted", r.body["message"])
	r = do(t, e.h, call{method: "GET", target: "/org/get?organization_name=Acme%20Corporation"})
	assert.Equal(t, http.StatusNotFound, r.status)

	r = del(call{target: "/org/delete?organization_name=Beta%20Labs", token: beta})
	assert.Equal(t, http.StatusOK, r.status, "name in the query")
}

func TestUnknownRoutes(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		method, target string
		status         int
		allow          string
	}{
		{"GET", "/nope", 404, ""},
		{"GET", "/org/create", 405, "POST"},
		{"POST", "/org/get", 405, "GET, HEAD"},
		{"PATCH", "/org/update", 405, "PUT"},
	} {
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, nil))
		assert.Equal(t, tt.status, rec.Code, tt.target)
		assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
		assert.Equal(t, tt.allow, rec.Header().Get("Allow"), tt.target)
	}
}

func TestDocs(t *testing.T) {
	e := newEnv(t)
	get := func(target string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		return rec
	}
	rec := get("/openapi.json")
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, httpapi.OpenAPI, rec.Body.Bytes())

	for _, page := range []string{"/docs/", "/redoc/"} {
		rec = get(page)
		assert.Equal(t, http.StatusOK, rec.Code, page)
	}
	// Each page finds the document relative to itself.
	for _, file := range []string{"/docs/swagger-init.js", "/redoc/"} {
		assert.Contains(t, get(file).Body.String(), "../openapi.json", file)
	}
	for _, asset := range []string{"/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/redoc/redoc.standalone.js"} {
		rec = get(asset)
		assert.Equal(t, http.StatusOK, rec.Code, asset)
		assert.Greater(t, rec.Body.Len(), 10000, asset)
	}
	rec = get("/docs")
	assert.Equal(t, http.StatusMovedPermanently, rec.Code)
	assert.Equal(t, "docs/", rec.Header().Get("Location"), "relative, so it works under a prefix")
}

// TestMounting serves the API under a prefix on net/http's ServeMux and on
// chi, and protects an application route with RequireAuth.
func TestMounting(t *testing.T) {
	e := newEnv(t)
	create(t, e.h, "Acme Corporation", "admin@acme.com", "MySecurePassword123")
	token := login(t, e.h, "admin@acme.com", "MySecurePassword123")

	whoami := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := httpapi.ClaimsFrom(r.Context())
		fmt.Fprintf(w, "%s %s", c.OrgID, c.Email)
	})
	// Each router mounts the API under prefix and protects its own /me.
	routers := map[string]func(prefix string) http.Handler{
		"ServeMux": func(prefix string) http.Handler {
			mux := http.NewServeMux()
			mux.Handle(prefix+"/", http.StripPrefix(prefix, e.h))
			mux.Handle("GET /me", httpapi.RequireAuth(e.m)(whoami))
			return mux
		},
		"chi": func(prefix string) http.Handler {
			r := chi.NewRouter()
			r.With(httpapi.RequireAuth(e.m)).Get("/me", whoami)
			r.Mount(prefix+"/", http.StripPrefix(prefix, e.h))
			return r
		},
	}
	for _, prefix := range []string{"", "/api"} {
		for name, newRouter := range routers {
			h := newRouter(prefix)
			name := name + " at " + prefix + "/"
			t.Run(name, func(t *testing.T) {
				send := func(method, target, token string) *httptest.ResponseRecorder {
					req := httptest.NewRequest(method, target, nil)
					if token != "" {
						req.Header.Set("Authorization", "Bearer "+token)
					}
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					return rec
				}
				rec := send("GET", prefix+"/org/get?organization_name=Acme%20Corporation", "")
				assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
				assert.Contains(t, rec.Body.String(), "tenant_acme_corporation")
				assert.Equal(t, http.StatusOK, send("GET", prefix+"/health", "").Code)
				assert.Equal(t, http.StatusOK, send("GET", prefix+"/docs/", "").Code)
				assert.Equal(t, http.StatusOK, send("GET", prefix+"/docs/swagger-ui-bundle.js", "").Code)
				rec = send("GET", prefix+"/docs", "")
				assert.Equal(t, "docs/", rec.Header().Get("Location"))
				rec = send("PUT", prefix+"/org/update", "")
				assert.Equal(t, http.StatusUnauthorized, rec.Code, "protected API routes stay protected")

				rec = send("GET", "/me", token)
				assert.Equal(t, http.StatusOK, rec.Code)
				assert.Contains(t, rec.Body.String(), "admin@acme.com")
				rec = send("GET", "/me", "")
				assert.Equal(t, http.StatusUnauthorized, rec.Code)
				assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
				assert.Equal(t, http.StatusUnauthorized, send("GET", "/me", token+"x").Code)
			})
		}
	}
}

func TestRequireAuthRejectsHugeHeaderFast(t *testing.T) {
	e := newEnv(t)
	h := httpapi.RequireAuth(e.m)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("handler reached without a valid token")
	}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+strings.Repeat("a", 1<<20))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
	assert.Equal(t, http.StatusUnauthorized, func() int {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}(), "other schemes")
}

// brokenStore fails every call the API makes first, as a database that
// errs would.
type brokenStore struct{ *memstore.Store }

var errBroken = errors.New("secret internal failure at 10.0.0.7")

func (brokenStore) ReserveName(context.Context, string, tenancy.OrgID, time.Time) error {
	return errBroken
}
func (brokenStore) ReleaseName(context.Context, string, tenancy.OrgID) error { return errBroken }
func (brokenStore) OrgByIdentifier(context.Context, string) (*tenancy.Org, error) {
	return nil, errBroken
}
func (brokenStore) OrgByID(context.Context, tenancy.OrgID) (*tenancy.Org, error) {
	return nil, errBroken
}
func (brokenStore) AdminByEmail(context.Context, string) (*tenancy.Admin, error) {
	return nil, errBroken
}
func (brokenStore) AdminByID(context.Context, tenancy.AdminID) (*tenancy.Admin, error) {
	return nil, errBroken
}
func (brokenStore) Invitation(context.Context, string) (*tenancy.Invitation, error) {
	return nil, errBroken
}

// TestInternalErrors checks that a failing database gives a bare 500 with
// a request id, and that the cause reaches the log, not the client.
func TestInternalErrors(t *testing.T) {
	var logs bytes.Buffer
	m, err := tenancy.New(brokenStore{memstore.New()}, tenancy.WithSigningSecret(testSecret), tenancy.WithBcryptCost(tenancy.MinBcryptCost))
	require.NoError(t, err)
	h := newHandler(t, m, httpapi.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	tok, err := m.IssueToken(&tenancy.Admin{ID: "507f191e810c19729de860ea", Email: "a@acme.com"}, &tenancy.Membership{OrgID: "507f1f77bcf86cd799439011", AdminID: "507f191e810c19729de860ea", Role: tenancy.RoleOwner})
	require.NoError(t, err)
	creds := map[string]string{"organization_name": "Acme", "email": "a@acme.com", "password": "MySecurePassword123"}

	for _, c := range append([]call{
		{method: "POST", target: "/org/create", body: creds},
		{method: "GET", target: "/org/get?organization_name=Acme"},
		{method: "PUT", target: "/org/update", body: creds, token: tok.AccessToken},
		{method: "DELETE", target: "/org/delete", body: map[string]string{"organization_name": "Acme"}, token: tok.AccessToken},
		{method: "POST", target: "/admin/login", body: map[string]string{"email": "a@acme.com", "password": "MySecurePassword123"}},
		{method: "POST", target: "/tenant/documents", body: map[string]any{"a": 1}, token: tok.AccessToken},
		{method: "GET", target: "/tenant/documents", token: tok.AccessToken},
		{method: "GET", target: "/tenant/documents/0123456789abcdef01234567", token: tok.AccessToken},
		{method: "DELETE", target: "/tenant/documents/0123456789abcdef01234567", token: tok.AccessToken},
		{method: "POST", target: "/admin/logout", token: tok.AccessToken},
		{method: "PUT", target: "/admin/password", token: tok.AccessToken, body: map[string]string{"current_password": "MySecurePassword123", "new_password": "AnotherPassword456"}},
	}, memberCalls(tok.AccessToken)...) {
		r := do(t, h, c)
		assert.Equal(t, http.StatusInternalServerError, r.status, c.target)
		assert.NotContains(t, string(r.raw), "10.0.0.7", "no internals in the response")
		assert.Contains(t, logs.String(), "request_id="+r.body["request_id"].(string), "the log names the request")
	}
	assert.Contains(t, logs.String(), "10.0.0.7", "the cause is logged")
}

// memberCalls are a call to each member and invitation endpoint, with
// the token bearer.
func memberCalls(bearer string) []call {
	id := "0123456789abcdef0123456a"
	return []call{
		{method: "POST", target: "/org/invitations", token: bearer, body: map[string]string{"email": "x@acme.com"}},
		{method: "GET", target: "/org/invitations", token: bearer},
		{method: "DELETE", target: "/org/invitations/" + id, token: bearer},
		{method: "POST", target: "/invitations/accept", body: map[string]string{"token": id + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "password": "MySecurePassword123"}},
		{method: "GET", target: "/org/members", token: bearer},
		{method: "GET", target: "/org/events", token: bearer},
		{method: "PUT", target: "/org/members/" + id, token: bearer, body: map[string]string{"role": "admin"}},
		{method: "DELETE", target: "/org/members/" + id, token: bearer},
		{method: "POST", target: "/org/transfer", token: bearer, body: map[string]string{"admin_id": id}},
		{method: "GET", target: "/admin/me", token: bearer},
		{method: "POST", target: "/admin/switch", token: bearer, body: map[string]string{"organization_name": "Acme"}},
	}
}

// newStore is mongostore.New that fails the test on an error.
func newStore(t testing.TB, db *mongo.Database, opts ...mongostore.Option) *mongostore.Store {
	t.Helper()
	s, err := mongostore.New(db, opts...)
	require.NoError(t, err)
	return s
}
