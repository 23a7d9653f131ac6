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

//go:embed assets/swagger.html assets/redoc.html assets/redoc.standalone.js.gz
var assets embed.FS

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(OpenAPI)
}

// docsHandler serves Swagger UI from files embedded in the binary: the
// docs work with no network. Pages use relative URLs, so they work under
// any prefix.
func docsHandler() http.Handler {
	return pageOr("assets/swagger.html", http.StripPrefix("/docs/", statigz.FileServer(swaggerui.FS)))
}

// redocHandler serves ReDoc, embedded like Swagger UI.
func redocHandler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err)
	}
	return pageOr("assets/redoc.html", http.StripPrefix("/redoc/", statigz.FileServer(sub.(fs.ReadDirFS))))
}

// pageOr serves the HTML page at the directory itself and files below it
// from files.
func pageOr(page string, files http.Handler) http.Handler {
	html, err := assets.ReadFile(page)
	if err != nil {
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/docs/" || r.URL.Path == "/redoc/" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(html)
			return
		}
		files.ServeHTTP(w, r)
	})
}
