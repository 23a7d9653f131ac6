package httpapi

import (
	"embed"
	"io/fs"
	"net/http"

	swaggerui "github.com/swaggest/swgui/v5/static"
	"github.com/vearutop/statigz"
)

// OpenAPI is the OpenAPI 3.1 document of this API, served at /openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

//go:embed assets/swagger.html assets/swagger-init.js assets/redoc.html assets/redoc.standalone.js.gz
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
func docsHandler() http.Handler {
	ui := http.StripPrefix("/docs/", statigz.FileServer(swaggerui.FS))
	own := http.StripPrefix("/docs/", statigz.FileServer(assetsDir()))
	return docsPage("/docs/", "assets/swagger.html", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/docs/swagger-init.js" {
			own.ServeHTTP(w, r)
			return
		}
		ui.ServeHTTP(w, r)
	}))
}

// redocHandler serves ReDoc, embedded like Swagger UI.
func redocHandler() http.Handler {
	return docsPage("/redoc/", "assets/redoc.html", http.StripPrefix("/redoc/", statigz.FileServer(assetsDir())))
}

// assetsDir is the embedded assets directory.
func assetsDir() fs.ReadDirFS {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err)
	}
	return sub.(fs.ReadDirFS)
}

// docsPage serves the HTML page at dir itself and files below it from
// files, all under docsPolicy.
func docsPage(dir, page string, files http.Handler) http.Handler {
	html, err := assets.ReadFile(page)
	if err != nil {
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", docsPolicy)
		if r.URL.Path == dir {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(html)
			return
		}
		files.ServeHTTP(w, r)
	})
}
