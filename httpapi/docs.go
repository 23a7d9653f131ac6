package httpapi

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

// OpenAPI is the OpenAPI 3.1 document of this API, served at /openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

// assets are the docs pages and the files they load: Swagger UI under
// assets/swagger, ReDoc under assets/redoc (see assets/README.md). Large
// files are stored gzipped, as name.gz.
//
//go:embed assets/swagger/*.html assets/swagger/*.js assets/swagger/*.gz assets/swagger/*.png
//go:embed assets/redoc/*.html assets/redoc/*.gz
var assets embed.FS

// docsPolicy is the Content-Security-Policy of the docs pages and their
// files: everything from the page's own origin, no inline or evaluated
// script. Styles may be inline because both UIs set them from script
// (ReDoc through styled-components); data: images are the icons of
// Swagger UI's CSS; ReDoc runs its search in a worker made from a blob.
const docsPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"font-src 'self'; connect-src 'self'; worker-src blob:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(OpenAPI)
}

// docsHandler serves Swagger UI from files embedded in the binary: the
// docs work with no network. Pages use relative URLs, so they work under
// any prefix.
func docsHandler() http.Handler { return docsPage("/docs/", "assets/swagger", "swagger.html") }

// redocHandler serves ReDoc, embedded like Swagger UI.
func redocHandler() http.Handler { return docsPage("/redoc/", "assets/redoc", "redoc.html") }

// docsPage serves the HTML page of the directory dir of assets at prefix
// itself and the directory's files below it, all under docsPolicy.
func docsPage(prefix, dir, page string) http.Handler {
	files, err := fs.Sub(assets, dir)
	if err != nil {
		panic(err)
	}
	html, err := fs.ReadFile(files, page)
	if err != nil {
		panic(err)
	}
	serve := http.StripPrefix(prefix, gzipFiles(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", docsPolicy)
		if r.URL.Path == prefix {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(html)
			return
		}
		serve.ServeHTTP(w, r)
	})
}

// gzipFiles serves the files of fsys. A file stored gzipped, as name.gz,
// is served as name: as stored to a client that accepts gzip (every
// browser), decompressed to one that does not.
func gzipFiles(fsys fs.FS) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path
		if !fs.ValidPath(name) || strings.HasSuffix(name, ".gz") {
			writeProblem(w, r, Problem{Status: http.StatusNotFound, Detail: "No such file: " + r.URL.Path})
			return
		}
		body, err := fs.ReadFile(fsys, name)
		gzipped := false
		if err != nil {
			body, err = fs.ReadFile(fsys, name+".gz")
			gzipped = true
		}
		if err != nil {
			writeProblem(w, r, Problem{Status: http.StatusNotFound, Detail: "No such file: " + r.URL.Path})
			return
		}
		if ctype := mime.TypeByExtension(path.Ext(name)); ctype != "" {
			w.Header().Set("Content-Type", ctype)
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		if !gzipped {
			_, _ = w.Write(body)
			return
		}
		w.Header().Set("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(body)
			return
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			panic(err) // embedded at build time: cannot be corrupt
		}
		_, _ = io.Copy(w, zr)
	})
}

// acceptsGzip reports whether an Accept-Encoding header value accepts
// gzip: it names gzip or *, without q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		q := strings.ReplaceAll(strings.ToLower(params), " ", "")
		return !(q == "q=0" || strings.HasPrefix(q, "q=0.") && strings.Trim(q[len("q=0."):], "0") == "" || q == "q=0.")
	}
	return false
}
