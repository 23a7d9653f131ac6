package httpapi

import (
	"errors"
	"net/http"
	"strings"
	"time"
)

// RequestHook is told, after each request the handler serves, the request
// (whose context carries the request id, RequestID, and whatever the
// application's middleware put there, such as a span), its route (the
// pattern it matched, such as "/org/members/{admin_id}", never the raw
// path; "/" for paths the API does not serve), the status it answered and
// how long it took. It runs on the request's goroutine, so it must be
// fast.
type RequestHook func(r *http.Request, route string, status int, d time.Duration)

// WithRequestHook sets the hook told of every request (see RequestHook),
// for metrics; the reference server wires it to Prometheus.
func WithRequestHook(h RequestHook) Option {
	return func(a *api) error {
		if h == nil {
			return errors.New("httpapi: request hook must not be nil")
		}
		a.requestHook = h
		return nil
	}
}

// observe tells a.requestHook of each request next serves. It must wrap
// the ServeMux directly: the mux records the route on the request it is
// given.
func (a *api) observe(next http.Handler) http.Handler {
	if a.requestHook == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		_, route, ok := strings.Cut(r.Pattern, " ")
		if !ok {
			route = r.Pattern
		}
		if route == "" {
			route = "/" // refused before routing (cleanPaths)
		}
		a.requestHook(r, route, sw.status(), time.Since(start))
	})
}

// statusWriter remembers the status a handler answers.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}
