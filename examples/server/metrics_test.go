package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy/webhook"
)

var metricsAddr = regexp.MustCompile(`msg="serving Prometheus metrics" addr=(\S+)`)

// TestMetrics runs the built server with METRICS_ADDR, makes a few
// requests, and scrapes /metrics: every metric the server documents is
// there, with values those requests explain.
func TestMetrics(t *testing.T) {
	t.Parallel()
	bin := buildServer(t)
	rc := &receiver{secret: webhook.NewSecret(), failures: 1, attempts: map[string]int{}}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	srv := startServer(t, bin, t.TempDir(), "", "METRICS_ADDR=127.0.0.1:0",
		"WEBHOOK_URL="+hook.URL, "WEBHOOK_SECRET="+rc.secret, "WEBHOOK_RETRY_FIRST=20ms")
	m := metricsAddr.FindStringSubmatch(srv.logs.String())
	require.NotNil(t, m, "the metrics address is logged")

	status, _ := srv.do(t, "POST", "/org/create", "", map[string]string{"organization_name": "Metered", "email": "a@metered.com", "password": "MySecurePassword123"})
	require.Equal(t, http.StatusCreated, status)
	status, body := srv.do(t, "POST", "/admin/login", "", map[string]string{"email": "a@metered.com", "password": "MySecurePassword123"})
	require.Equal(t, http.StatusOK, status)
	token := body["access_token"].(string)
	status, _ = srv.do(t, "POST", "/admin/login", "", map[string]string{"email": "a@metered.com", "password": "WrongPassword123"})
	require.Equal(t, http.StatusUnauthorized, status)
	status, _ = srv.do(t, "GET", "/org/members/0123456789abcdef01234567", token, nil)
	require.Equal(t, http.StatusMethodNotAllowed, status)
	status, _ = srv.do(t, "GET", "/org/get?organization_name=Metered", "", nil)
	require.Equal(t, http.StatusOK, status)

	// Three events (created, logged_in, login_failed), each refused once
	// by the receiver, then taken.
	scrape := func() string {
		res, err := http.Get("http://" + m[1] + "/metrics")
		require.NoError(t, err)
		defer res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
		raw, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return string(raw)
	}
	var text string
	require.Eventually(t, func() bool {
		text = scrape()
		return strings.Contains(text, `tenancy_webhook_deliveries_total{result="success"} 3`+"\n")
	}, 20*time.Second, 20*time.Millisecond, "the three events delivered")

	value := func(series string) float64 {
		t.Helper()
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
		m := re.FindStringSubmatch(text)
		if !assert.NotNil(t, m, "%s in:\n%s", series, text) {
			return -1
		}
		v, err := strconv.ParseFloat(m[1], 64)
		require.NoError(t, err)
		return v
	}
	assert.Equal(t, 1.0, value(`tenancy_http_requests_total{code="201",method="POST",route="/org/create"}`))
	assert.Equal(t, 1.0, value(`tenancy_http_requests_total{code="401",method="POST",route="/admin/login"}`))
	assert.Equal(t, 1.0, value(`tenancy_http_requests_total{code="405",method="GET",route="/org/members/{admin_id}"}`), "the route pattern, not the path")
	assert.NotContains(t, text, "0123456789abcdef01234567", "no raw path in a label")
	assert.Equal(t, 1.0, value(`tenancy_http_request_duration_seconds_count{method="GET",route="/org/get"}`))
	assert.Positive(t, value(`tenancy_http_request_duration_seconds_sum{method="POST",route="/org/create"}`))
	assert.Equal(t, 1.0, value(`tenancy_logins_total{result="success"}`))
	assert.Equal(t, 1.0, value(`tenancy_logins_total{result="failure"}`))
	assert.Equal(t, 0.0, value(`tenancy_logins_total{result="throttled"}`))
	assert.Equal(t, 0.0, value(`tenancy_logins_total{result="overloaded"}`))
	assert.Equal(t, 3.0, value(`tenancy_password_hash_wait_seconds_count`), "one hash and two comparisons")
	assert.Less(t, value(`tenancy_password_hash_wait_seconds_sum`), (10 * time.Second).Seconds())
	assert.Equal(t, 1.0, value(`tenancy_operations_total{operation="create",result="success"}`))
	assert.Equal(t, 0.0, value(`tenancy_recovery_settled_total{kind="delete"}`))
	assert.Equal(t, 3.0, value(`tenancy_webhook_deliveries_total{result="success"}`))
	assert.Equal(t, 3.0, value(`tenancy_webhook_deliveries_total{result="failure"}`))
	assert.Equal(t, 0.0, value(`tenancy_webhook_deliveries_total{result="dropped"}`))
	lag := value(`tenancy_webhook_lag_seconds`)
	assert.Positive(t, lag)
	assert.Less(t, lag, 20.0)
	assert.Positive(t, value(`go_goroutines`))
	assert.Positive(t, value(`process_resident_memory_bytes`))
}
