package httpapi_test

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/httpapi"
	"github.com/tenancy/tenancy/memstore"
)

// docsEnv is the API over an in-memory store: what the docs tests read
// needs no database.
type docsEnv struct{ h http.Handler }

func newEnv(t *testing.T) *docsEnv {
	t.Helper()
	m, err := tenancy.New(memstore.New(), tenancy.WithSigningSecret([]byte("docs-test-secret-of-at-least-32-bytes")),
		tenancy.WithBcryptCost(tenancy.MinBcryptCost))
	require.NoError(t, err)
	h, err := httpapi.New(m)
	require.NoError(t, err)
	return &docsEnv{h: h}
}

// outsideURLs lists every http:// and https:// string the docs pages and
// their assets may contain, each with why it makes the browser load
// nothing. Anything else that names a host fails
// TestDocsLoadNothingOutside, and so does an entry no served file holds
// any longer. A new version of Swagger UI or ReDoc has to be read against
// this list.
var outsideURLs = []struct {
	why  string
	urls []string
}{
	{"XML namespaces: names given to createElementNS and written in the xmlns of inline SVG (the CSS's data: icons), never fetched", []string{
		"http://www.w3.org/1998/Math/MathML",
		"http://www.w3.org/1999/xhtml",
		"http://www.w3.org/1999/xlink",
		"http://www.w3.org/2000/svg",
		"http://www.w3.org/XML/1998/namespace",
	}},
	{"JSON Schema and OpenAPI dialect identifiers, compared with a document's $schema or jsonSchemaDialect as strings, never fetched", []string{
		"http://json-schema.org/draft-04/schema#",
		"http://json-schema.org/draft-06/schema#",
		"http://json-schema.org/draft-07/schema#",
		"https://json-schema.org/draft/2019-09/schema",
		"https://json-schema.org/draft/2020-12/schema",
		"https://spec.openapis.org/oas/3.1/dialect/base",
	}},
	{"the scheme prefixes that URL parsers test for or prepend", []string{
		"http://",
		"https://",
	}},
	{"bases of new URL(ref, base) arithmetic: the result is used as a string, the base is never loaded", []string{
		"https://base${String",
		"https://swagger.io",
		"https://vladimirgorej.com",
	}},
	{"Redocly registry URL patterns that a $ref is compared with (startsWith); our document has no such $ref", []string{
		"https://api.${n}/registry/",
		"https://api.${o.DOMAINS[e]}/registry",
		"https://api.${t}/registry/",
	}},
	{"example values the UIs show for the uri, iri and uri-template formats", []string{
		"http://example.com",
		"http://example.com/entity/1",
		"http://example.com/{endpoint}",
		"https://example.com/",
		"https://example.com/dictionary/{term:1}/{term}",
		"https://실례.com/",
	}},
	{"links in error messages, comments and metadata strings of the bundled libraries: text, never loaded", []string{
		"http://fb.me/use-check-prop-types",
		"https://datatracker.ietf.org/doc/html/rfc2616#section-2.2",
		"https://datatracker.ietf.org/doc/html/rfc3986#section-2.1",
		"https://datatracker.ietf.org/doc/html/rfc3986#section-2.2",
		"https://datatracker.ietf.org/doc/html/rfc3986#section-2.3",
		"https://datatracker.ietf.org/doc/html/rfc3986#section-3.3",
		"https://datatracker.ietf.org/doc/html/rfc5234#appendix-B.1",
		"https://datatracker.ietf.org/doc/html/rfc6265#section-2.2",
		"https://datatracker.ietf.org/doc/html/rfc6265#section-4.1.1",
		"https://datatracker.ietf.org/doc/html/rfc6265#section-4.2.1",
		"https://datatracker.ietf.org/doc/html/rfc6901",
		"https://datatracker.ietf.org/doc/html/rfc6901#section-4",
		"https://datatracker.ietf.org/doc/html/rfc9110#section-5.6.2",
		"https://git.io/JUIaE#",
		"https://github.com/highlightjs/highlight.js/issues/2277",
		"https://github.com/highlightjs/highlight.js/issues/2534",
		"https://github.com/highlightjs/highlight.js/issues/2559",
		"https://github.com/highlightjs/highlight.js/pull/2844",
		"https://github.com/markedjs/marked.",
		"https://github.com/mermade/oas-kit",
		"https://github.com/mobxjs/mobx/blob/main/packages/mobx/src/errors.ts",
		"https://github.com/styled-components/polished/blob/main/src/internalHelpers/errors.md#",
		"https://github.com/zloirock/core-js",
		"https://github.com/zloirock/core-js/blob/v3.40.0/LICENSE",
		"https://marked.js.org/#/USING_ADVANCED.md#options",
		"https://reactjs.org/docs/error-decoder.html?invariant=",
		"https://redoc.ly/docs/cli/",
		"https://redocly.com/docs/api-registry/guides/migration-guide-config-file/#changed-properties",
		"https://redocly.com/docs/cli/configuration/",
		"https://redocly.com/docs/cli/rules/configurable-rules/",
		"https://redux.js.org/Errors?code=${s}",
		"https://stackoverflow.com/a/31732902/1749888",
		"https://www.rfc-editor.org/errata/eid5518",
		"https://www.rfc-editor.org/errata/eid6937",
		"https://www.rfc-editor.org/errata/eid8242",
		"https://www.rfc-editor.org/rfc/rfc6570#section-1.5",
		"https://www.rfc-editor.org/rfc/rfc6570#section-2",
		"https://www.rfc-editor.org/rfc/rfc6570#section-2.1",
	}},
	{"link targets (<a href>) Swagger UI builds from a document's own text (Markdown mentions and hashtags, a license identifier): they open on click, load nothing, and our document has none", []string{
		"https://instagram.com/",
		"https://instagram.com/explore/tags/",
		"https://soundcloud.com/",
		"https://spdx.org/licenses/${a}.html",
		"https://twitter.com/",
		"https://twitter.com/hashtag/",
		"https://www.facebook.com/hashtag/",
		"https://www.tiktok.com/@",
		"https://www.tiktok.com/tag/",
	}},
	{`the href of ReDoc's "API docs by Redocly" link, opened on click only (the logo it held, loaded from cdn.redoc.ly, is patched out of the bundle)`, []string{
		"https://redocly.com/redoc/",
	}},
	{"Swagger UI's default validatorUrl, used only when the configuration leaves it undefined: swagger-init.js sets validatorUrl: null", []string{
		"https://validator.swagger.io/validator",
	}},
}

var (
	urlPattern    = regexp.MustCompile("(?i)https?://[^\\s\"'`<>()\\\\]*")
	refPattern    = regexp.MustCompile(`(?i)\s(?:src|href)\s*=\s*"([^"]*)"`)
	scriptPattern = regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`)
)

// TestDocsLoadNothingOutside walks every page and asset served under
// /docs/ and /redoc/ (every embedded file, and everything the pages
// reference) and checks that none names an outside host but the strings
// of outsideURLs, that the pages reference only served files, declare
// their icon and run no inline script, and that each answer carries a
// Content-Security-Policy that lets the page load from its own origin
// only.
func TestDocsLoadNothingOutside(t *testing.T) {
	e := newEnv(t)
	get := func(target string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		return rec
	}
	targets := []string{"/docs/", "/redoc/", "/openapi.json"}
	walk := func(prefix string, fsys fs.FS, root string) {
		require.NoError(t, fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
				targets = append(targets, prefix+strings.TrimSuffix(rel, ".gz"))
			}
			return err
		}))
	}
	walk("/docs/", httpapi.DocAssets, "assets/swagger")
	walk("/redoc/", httpapi.DocAssets, "assets/redoc")
	for _, page := range []string{"/docs/", "/redoc/"} {
		html := get(page).Body.String()
		for _, m := range refPattern.FindAllStringSubmatch(html, -1) {
			ref := m[1]
			if strings.HasPrefix(ref, "data:") {
				continue
			}
			assert.NotContains(t, ref, "//", "%s references %s: only files served beside it", page, ref)
			assert.NotContains(t, ref, ":", "%s references %s: only files served beside it", page, ref)
			targets = append(targets, path.Join(page, ref))
		}
		assert.Regexp(t, `<link rel="icon" [^>]*href=`, html, "%s declares its icon, or the browser asks for /favicon.ico", page)
		for _, m := range scriptPattern.FindAllStringSubmatch(html, -1) {
			assert.Contains(t, m[1], "src=", "%s: every script is a served file", page)
			assert.Empty(t, strings.TrimSpace(m[2]), "%s runs an inline script", page)
		}
		assert.NotRegexp(t, `(?i)\son[a-z]+\s*=`, html, "%s has an inline event handler", page)
	}

	allowed := map[string]bool{}
	for _, g := range outsideURLs {
		for _, u := range g.urls {
			allowed[u] = false
		}
	}
	slices.Sort(targets)
	targets = slices.Compact(targets)
	t.Logf("%d pages and files", len(targets))
	for _, target := range targets {
		rec := get(target)
		require.Equal(t, http.StatusOK, rec.Code, target)
		assert.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"), target)
		if target != "/openapi.json" {
			checkDocsPolicy(t, target, rec.Header().Get("Content-Security-Policy"))
		}
		for _, u := range urlPattern.FindAllString(rec.Body.String(), -1) {
			if _, ok := allowed[u]; !ok {
				t.Errorf("%s names an outside host: %s", target, u)
				continue
			}
			allowed[u] = true
		}
	}
	for u, found := range allowed {
		assert.True(t, found, "%s is in outsideURLs but no served file holds it: drop it", u)
	}
	assert.Regexp(t, `validatorUrl:\s*null`, get("/docs/swagger-init.js").Body.String())
}

// TestDocsFilesGzip checks that the files stored gzipped are sent as
// stored to a client that accepts gzip and decompressed to one that does
// not (or refuses it with q=0), with the same content either way.
func TestDocsFilesGzip(t *testing.T) {
	e := newEnv(t)
	get := func(target, accept string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", target, nil)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		return rec
	}
	for _, target := range []string{"/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/redoc/redoc.standalone.js"} {
		plain := get(target, "")
		require.Equal(t, http.StatusOK, plain.Code, target)
		assert.Empty(t, plain.Header().Get("Content-Encoding"), target)
		assert.Equal(t, "Accept-Encoding", plain.Header().Get("Vary"), target)
		assert.Contains(t, plain.Header().Get("Content-Type"), map[bool]string{true: "text/css", false: "text/javascript"}[strings.HasSuffix(target, ".css")], target)
		for _, accept := range []string{"gzip", "br, gzip;q=0.5", "*"} {
			rec := get(target, accept)
			require.Equal(t, http.StatusOK, rec.Code, target)
			assert.Equal(t, "gzip", rec.Header().Get("Content-Encoding"), "%s with %q", target, accept)
			zr, err := gzip.NewReader(rec.Body)
			require.NoError(t, err)
			body, err := io.ReadAll(zr)
			require.NoError(t, err)
			assert.Equal(t, plain.Body.Bytes(), body, "%s with %q", target, accept)
		}
		for _, accept := range []string{"gzip;q=0", "br, gzip; q=0.000", "identity"} {
			rec := get(target, accept)
			assert.Empty(t, rec.Header().Get("Content-Encoding"), "%s with %q", target, accept)
			assert.Equal(t, plain.Body.Bytes(), rec.Body.Bytes(), "%s with %q", target, accept)
		}
	}
	for _, target := range []string{"/docs/swagger-ui-bundle.js.gz", "/docs/nothing.js", "/redoc/swagger-ui.css"} {
		assert.Equal(t, http.StatusNotFound, get(target, "gzip").Code, target)
	}
}

// checkDocsPolicy checks that a docs answer's Content-Security-Policy
// loads everything from the page's own origin: no host, no wildcard, no
// inline or evaluated script.
func checkDocsPolicy(t *testing.T, target, policy string) {
	t.Helper()
	directives := map[string][]string{}
	for _, d := range strings.Split(policy, ";") {
		if f := strings.Fields(d); len(f) > 0 {
			directives[f[0]] = f[1:]
		}
	}
	if !assert.NotEmpty(t, policy, "%s has a Content-Security-Policy", target) {
		return
	}
	assert.Equal(t, []string{"'none'"}, directives["default-src"], target)
	assert.Equal(t, []string{"'self'"}, directives["script-src"], target)
	assert.Equal(t, []string{"'self'"}, directives["connect-src"], target)
	assert.Equal(t, []string{"'none'"}, directives["frame-ancestors"], target)
	for name, sources := range directives {
		for _, s := range sources {
			switch {
			case s == "'self'", s == "'none'", s == "data:" && name == "img-src", s == "blob:" && name == "worker-src",
				s == "'unsafe-inline'" && name == "style-src":
			default:
				t.Errorf("%s: %s allows %s", target, name, s)
			}
		}
	}
}

// TestOpenAPIOperationsTaggedAndSecured reads the served document: every
// operation has a tag the document declares and states its security,
// [] for the public ones, so that linters and generated clients do not
// guess; and the ones that state none are served without a token.
func TestOpenAPIOperationsTaggedAndSecured(t *testing.T) {
	e := newEnv(t)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var doc struct {
		Tags []struct {
			Name string `json:"name"`
		} `json:"tags"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &doc))
	declared := map[string]bool{}
	for _, tag := range doc.Tags {
		declared[tag.Name] = true
	}
	operations := 0
	for p, item := range doc.Paths {
		for method, raw := range item {
			if !slices.Contains([]string{"get", "put", "post", "delete", "patch"}, method) {
				continue
			}
			operations++
			var op struct {
				Tags     []string            `json:"tags"`
				Security *[]map[string][]any `json:"security"`
			}
			require.NoError(t, json.Unmarshal(raw, &op), "%s %s", method, p)
			name := strings.ToUpper(method) + " " + p
			if assert.NotEmpty(t, op.Tags, "%s has no tag", name) {
				for _, tag := range op.Tags {
					assert.True(t, declared[tag], "%s: tag %q is not declared", name, tag)
				}
			}
			if !assert.NotNil(t, op.Security, "%s does not state its security", name) {
				continue
			}
			for _, req := range *op.Security {
				for scheme := range req {
					assert.Contains(t, doc.Components.SecuritySchemes, scheme, "%s", name)
				}
			}
			if len(*op.Security) == 0 && !strings.Contains(p, "{") {
				r := httptest.NewRequest(strings.ToUpper(method), p, strings.NewReader("{}"))
				r.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				e.h.ServeHTTP(rec, r)
				assert.NotEqual(t, http.StatusUnauthorized, rec.Code, "%s is public in the document but asks for a token", name)
			}
		}
	}
	assert.Equal(t, 25, operations, "every operation was read")
}
