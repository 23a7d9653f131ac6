package apitest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy/httpapi"
)

// TestBodiesMustBeUTF8 sends bodies holding bytes that are not UTF-8, and
// \u escapes of lone surrogates, to every endpoint that reads a body:
// encoding/json would decode both to U+FFFD, so that a name is stored
// altered and a password compares as another string. Each must get a 400
// that says so, and change nothing.
func TestBodiesMustBeUTF8(t *testing.T) {
	e := newEnvWith(t, nil, []httpapi.Option{httpapi.WithLoginRateLimit(0, 0)})
	create(t, e.h, "Acme Corporation", "admin@acme.com", "MySecurePassword123")
	tok := login(t, e.h, "admin@acme.com", "MySecurePassword123")

	tests := []struct {
		desc, method, target, body string
		auth                       bool
	}{
		{"create name", "POST", "/org/create", "{\"organization_name\":\"Hostile Bytes \xff\xfe\xfd(\",\"email\":\"x@evil.com\",\"password\":\"EvilPassword123\"}", false},
		{"create name, lone high surrogate", "POST", "/org/create", `{"organization_name":"Hostile \ud800 Escapes","email":"x@evil.com","password":"EvilPassword123"}`, false},
		{"create name, lone low surrogate", "POST", "/org/create", `{"organization_name":"Hostile \udc00 Escapes","email":"x@evil.com","password":"EvilPassword123"}`, false},
		{"create name, reversed pair", "POST", "/org/create", `{"organization_name":"Hostile \ude00\ud83d Escapes","email":"x@evil.com","password":"EvilPassword123"}`, false},
		{"create, in an unknown member", "POST", "/org/create", "{\"organization_name\":\"Fine Name\",\"email\":\"x@evil.com\",\"password\":\"EvilPassword123\",\"x\":\"\xc0\xaf\"}", false},
		{"login password", "POST", "/admin/login", "{\"email\":\"admin@acme.com\",\"password\":\"MySecurePassword123\xff\"}", false},
		{"login password, escaped", "POST", "/admin/login", `{"email":"admin@acme.com","password":"MySecurePassword123\udfff"}`, false},
		{"login email", "POST", "/admin/login", "{\"email\":\"admin@acme.com\xed\xa0\x80\",\"password\":\"MySecurePassword123\"}", false},
		{"update name", "PUT", "/org/update", "{\"organization_name\":\"Acme \xf8\x88\x80\x80\x80\",\"email\":\"admin@acme.com\",\"password\":\"MySecurePassword123\"}", true},
		{"delete name", "DELETE", "/org/delete", "{\"organization_name\":\"Acme Corporation\xff\"}", true},
		{"password change", "PUT", "/admin/password", "{\"current_password\":\"MySecurePassword123\",\"new_password\":\"NewPassword123\xfe\"}", true},
		{"document value", "POST", "/tenant/documents", "{\"note\":\"caf\xe9\"}", true},
		{"document key", "POST", "/tenant/documents", "{\"n\xffote\":1}", true},
		{"document, escaped", "POST", "/tenant/documents", `{"a":{"b":["\ud800"]}}`, true},
	}
	before := dbDigest(t, e)
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			c := call{method: tt.method, target: tt.target, body: tt.body, hostile: true}
			if tt.auth {
				c.token = tok
			}
			r := do(t, e.h, c)
			assert.Equal(t, http.StatusBadRequest, r.status, "%s", r.raw)
			assert.Contains(t, r.body["detail"], "UTF-8", "%s", r.raw)
		})
	}
	assert.Equal(t, before, dbDigest(t, e), "no refused body changed the database")

	// Escaped characters that are UTF-8, a surrogate pair among them, and
	// escaped backslashes before "u" are fine.
	r := do(t, e.h, call{method: "POST", target: "/org/create",
		body: `{"organization_name":"Caf\u00e9 \ud83d\ude00","email":"cafe@acme.com","password":"MySecurePassword123"}`})
	require.Equal(t, http.StatusCreated, r.status, "%s", r.raw)
	assert.Equal(t, "Café 😀", r.body["organization_name"])
	r = do(t, e.h, call{method: "POST", target: "/tenant/documents", token: tok, body: `{"path":"C:\\ud800\\x"}`})
	require.Equal(t, http.StatusCreated, r.status, "%s", r.raw)
	assert.Equal(t, `C:\ud800\x`, r.body["data"].(map[string]any)["path"])
}

// TestDocumentIntegersStayExact stores integers at and past the edges of
// int64: those that fit come back exactly, those that do not are refused
// with a 400 naming their path (encoding/json alone would store them as
// rounded floats); numbers with a fraction or an exponent are floats.
func TestDocumentIntegersStayExact(t *testing.T) {
	e := newEnv(t)
	create(t, e.h, "Acme Corporation", "admin@acme.com", "MySecurePassword123")
	tok := login(t, e.h, "admin@acme.com", "MySecurePassword123")

	r := do(t, e.h, call{method: "POST", target: "/tenant/documents", token: tok,
		body: `{"max":9223372036854775807,"min":-9223372036854775808,"zero":-0,"f":1.5,"e":1e3,"ef":9223372036854775808.0,"nested":{"a":[1,9007199254740993]}}`})
	require.Equal(t, http.StatusCreated, r.status, "%s", r.raw)
	r = do(t, e.h, call{method: "GET", target: "/tenant/documents/" + r.body["id"].(string), token: tok})
	require.Equal(t, http.StatusOK, r.status)
	for _, want := range []string{`"max":9223372036854775807`, `"min":-9223372036854775808`, `"zero":0`, `"f":1.5`, `"e":1000`, `"ef":9223372036854776000`, `"a":[1,9007199254740993]`} {
		assert.Contains(t, string(r.raw), want)
	}

	tests := []struct {
		desc, body string
		fields     []string
		// beyond float64 too, so the OpenAPI validator cannot read it
		beyondFloat bool
	}{
		{"one past the maximum", `{"n":9223372036854775808}`, []string{"data.n"}, false},
		{"one past the minimum", `{"n":-9223372036854775809}`, []string{"data.n"}, false},
		{"huge", `{"n":` + strings.Repeat("9", 400) + `}`, []string{"data.n"}, true},
		{"nested", `{"a":{"b":[1,{"c":18446744073709551616}]}}`, []string{"data.a.b[1].c"}, false},
		{"several", `{"x":99999999999999999999,"y":[-99999999999999999999]}`, []string{"data.x", "data.y[0]"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			r := do(t, e.h, call{method: "POST", target: "/tenant/documents", token: tok, body: tt.body, invalidRequest: tt.beyondFloat})
			assert.Equal(t, http.StatusBadRequest, r.status, "%s", r.raw)
			assert.ElementsMatch(t, tt.fields, fields(r), "%s", r.raw)
			assert.Contains(t, r.body["detail"], "64-bit integer")
		})
	}
	r = do(t, e.h, call{method: "GET", target: "/tenant/documents", token: tok})
	require.Equal(t, http.StatusOK, r.status)
	assert.Len(t, r.body["documents"], 1, "no refused document was stored")
}
