package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/httpapi"
	"github.com/tenancy/tenancy/memstore"
)

// TestRequestHook checks that the hook is told the route pattern, never
// the raw path, with the status answered.
func TestRequestHook(t *testing.T) {
	m, err := tenancy.New(memstore.New(), tenancy.WithSigningSecret([]byte("hook-test-secret-Xk3vQp8sLm2nRt7wYz5cBd9f")))
	require.NoError(t, err)
	var mu sync.Mutex
	var got []string
	h, err := httpapi.New(m, httpapi.WithRequestHook(func(r *http.Request, route string, status int, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		assert.Positive(t, d)
		assert.NotEmpty(t, httpapi.RequestID(r.Context()), "the request's context")
		got = append(got, r.Method+" "+route+" "+strconv.Itoa(status))
	}))
	require.NoError(t, err)
	for _, req := range []struct{ method, target string }{
		{"GET", "/health"},
		{"GET", "/org/get?organization_name=Nobody"},
		{"PUT", "/org/members/0123456789abcdef01234567"},
		{"DELETE", "/health"},
		{"GET", "/no/such/path/4711"},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(req.method, req.target, nil))
	}
	assert.Equal(t, []string{
		"GET /health 200",
		"GET /org/get 404",
		"PUT /org/members/{admin_id} 401",
		"DELETE /health 405",
		"GET / 404",
	}, got)
	_, err = httpapi.New(m, httpapi.WithRequestHook(nil))
	assert.ErrorContains(t, err, "request hook")
}

// TestUncleanPathsAre404 checks that a path ServeMux would redirect to its
// clean form gets a 404 problem instead.
func TestUncleanPathsAre404(t *testing.T) {
	m, err := tenancy.New(memstore.New(), tenancy.WithSigningSecret([]byte("hook-test-secret-Xk3vQp8sLm2nRt7wYz5cBd9f")))
	require.NoError(t, err)
	h, err := httpapi.New(m)
	require.NoError(t, err)
	for _, p := range []string{"/org/members/a/../0123456789abcdef01234567", "/org/members//x", "/org/invitations/..", "/./health", "/docs/."} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("PUT", "http://api.test"+p, nil))
		assert.Equal(t, http.StatusNotFound, rec.Code, p)
		assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"), p)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/docs/", nil))
	assert.Equal(t, http.StatusOK, rec.Code, "a clean path with a trailing slash")
}
