package main

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServersShareADatabaseWithCaches runs three real servers on one
// MongoDB-wire database, as a user scales out with MONGO_URI: a writes;
// hour and second cache with CACHE_MAX_STALE of an hour and of a second.
// a sees its own logout and rename at once. hour, which checked the token
// and looked the name up before, still serves what it cached: the cache
// is on and may be stale, as documented. second serves neither once a
// second has passed: never later than its bound.
func TestServersShareADatabaseWithCaches(t *testing.T) {
	bin := buildServer(t)
	uri := startDatabase(t)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	env := []string{"MONGO_URI=" + uri, "PRIMARY_DB=cachetest", "SECRET_KEY=" + hex.EncodeToString(secret), "LOGIN_RATE_LIMIT=0"}
	a := startServer(t, bin, t.TempDir(), "", env...)
	hour := startServer(t, bin, t.TempDir(), "", append(env, "CACHE_MAX_STALE=1h")...)
	second := startServer(t, bin, t.TempDir(), "", append(env, "CACHE_MAX_STALE=1s")...)

	status, _ := a.do(t, "POST", "/org/create", "", map[string]string{"organization_name": "Acme Corporation", "email": "admin@acme.com", "password": "MySecurePassword123"})
	require.Equal(t, http.StatusCreated, status)
	status, body := a.do(t, "POST", "/admin/login", "", map[string]string{"email": "admin@acme.com", "password": "MySecurePassword123"})
	require.Equal(t, http.StatusOK, status)
	token := body["access_token"].(string)
	byName := "/org/get?organization_name=" + url.QueryEscape("Acme Corporation")
	for _, s := range []*server{hour, second} {
		status, _ = s.do(t, "GET", "/tenant/documents", token, nil)
		require.Equal(t, http.StatusOK, status, "the token works everywhere")
		status, _ = s.do(t, "GET", byName, "", nil)
		require.Equal(t, http.StatusOK, status)
	}

	status, _ = a.do(t, "POST", "/admin/logout", token, nil)
	require.Equal(t, http.StatusOK, status)
	status, body = a.do(t, "POST", "/admin/login", "", map[string]string{"email": "admin@acme.com", "password": "MySecurePassword123"})
	require.Equal(t, http.StatusOK, status)
	status, _ = a.do(t, "PUT", "/org/update", body["access_token"].(string), map[string]string{"organization_name": "Acme Global", "email": "admin@acme.com", "password": "MySecurePassword123"})
	require.Equal(t, http.StatusOK, status)
	changed := time.Now()

	status, _ = a.do(t, "GET", "/tenant/documents", token, nil)
	assert.Equal(t, http.StatusUnauthorized, status, "the server that logged the token out, at once")
	status, _ = a.do(t, "GET", byName, "", nil)
	assert.Equal(t, http.StatusNotFound, status, "the server that renamed, at once")

	status, _ = hour.do(t, "GET", "/tenant/documents", token, nil)
	assert.Equal(t, http.StatusOK, status, "a bound of an hour: the logout is not seen yet")
	status, _ = hour.do(t, "GET", byName, "", nil)
	assert.Equal(t, http.StatusOK, status, "a bound of an hour: the rename is not seen yet")

	time.Sleep(time.Until(changed.Add(time.Second + 50*time.Millisecond)))
	status, _ = second.do(t, "GET", "/tenant/documents", token, nil)
	assert.Equal(t, http.StatusUnauthorized, status, "a bound of a second: the logout, a second later")
	status, _ = second.do(t, "GET", byName, "", nil)
	assert.Equal(t, http.StatusNotFound, status, "a bound of a second: the rename, a second later")
	status, _ = second.do(t, "GET", "/org/get?organization_name="+url.QueryEscape("Acme Global"), "", nil)
	assert.Equal(t, http.StatusOK, status)
}
