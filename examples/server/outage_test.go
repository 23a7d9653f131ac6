package main

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy/webhook"
)

// database is a FerretDB process of its own, serving one directory, that
// a test can kill and start again on the same files.
type database struct {
	bin, dir string
	uri      string
	cmd      *exec.Cmd
	stdin    interface{ Close() error }
	done     chan error
}

var (
	serveOnce sync.Once
	serveBin  string
	serveErr  error
)

// buildDatabase builds internal/embeddb/serve once per test binary.
func buildDatabase(t *testing.T) string {
	t.Helper()
	serveOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tenancy-serve-")
		if err != nil {
			serveErr = err
			return
		}
		serveBin = filepath.Join(dir, "serve")
		if out, err := exec.Command("go", "build", "-o", serveBin, "../../internal/embeddb/serve").CombinedOutput(); err != nil {
			serveErr = err
			t.Logf("go build: %s", out)
		}
	})
	require.NoError(t, serveErr)
	return serveBin
}

func newDatabase(t *testing.T) *database {
	t.Helper()
	d := &database{bin: buildDatabase(t), dir: t.TempDir()}
	d.start(t)
	t.Cleanup(func() { d.stop() })
	return d
}

func (d *database) start(t *testing.T) {
	t.Helper()
	d.cmd = exec.Command(d.bin, d.dir)
	stdin, err := d.cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := d.cmd.StdoutPipe()
	require.NoError(t, err)
	d.cmd.Stderr = os.Stderr
	require.NoError(t, d.cmd.Start())
	d.stdin, d.done = stdin, make(chan error, 1)
	go func() { d.done <- d.cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "the database's connection string")
	uri := strings.TrimSpace(line)
	if d.uri != "" {
		require.Equal(t, d.uri, uri, "the same directory, the same socket")
	}
	d.uri = uri
}

// kill SIGKILLs the database process and waits for it to go.
func (d *database) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, d.cmd.Process.Kill())
	<-d.done
	d.cmd = nil
}

func (d *database) stop() {
	if d.cmd == nil {
		return
	}
	_ = d.stdin.Close()
	<-d.done
	d.cmd = nil
}

// TestDatabaseOutage kills the database under a running server: requests
// that need it answer 503 with Retry-After within a few seconds (never a
// 500, never a hang), /health stays 200 and /ready turns 503; once the
// database is started again on its files, the server serves again by
// itself.
func TestDatabaseOutage(t *testing.T) {
	db := newDatabase(t)
	bin := buildServer(t)
	// With webhooks on, so that delivery meets the outage too.
	rc := &receiver{secret: webhook.NewSecret(), attempts: map[string]int{}}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	srv := startServer(t, bin, t.TempDir(), "", "MONGO_URI="+db.uri, "WEBHOOK_URL="+hook.URL, "WEBHOOK_SECRET="+rc.secret)
	status, _ := srv.do(t, "POST", "/org/create", "", map[string]string{"organization_name": "Acme", "email": "a@acme.com", "password": "SecurePass123"})
	require.Equal(t, http.StatusCreated, status)
	status, tok := srv.do(t, "POST", "/admin/login", "", map[string]string{"email": "a@acme.com", "password": "SecurePass123"})
	require.Equal(t, http.StatusOK, status)
	token := tok["access_token"].(string)

	db.kill(t)
	requests := []struct {
		method, path, token string
		body                any
	}{
		{"GET", "/org/get?organization_name=Acme", "", nil},
		{"POST", "/admin/login", "", map[string]string{"email": "a@acme.com", "password": "SecurePass123"}},
		{"POST", "/org/create", "", map[string]string{"organization_name": "Globex", "email": "a@globex.com", "password": "SecurePass123"}},
		{"GET", "/tenant/documents", token, nil},
	}
	for _, r := range requests {
		start := time.Now()
		res := srv.raw(t, r.method, r.path, r.token, r.body)
		took := time.Since(start)
		assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "%s %s with the database down", r.method, r.path)
		assert.NotEmpty(t, res.Header.Get("Retry-After"), "%s %s", r.method, r.path)
		assert.Less(t, took, 5*time.Second, "%s %s answered in %v", r.method, r.path, took)
	}
	res := srv.raw(t, "GET", "/health", "", nil)
	assert.Equal(t, http.StatusOK, res.StatusCode, "/health does not need the database")
	res = srv.raw(t, "GET", "/ready", "", nil)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "/ready says the database is down")
	// Delivery fails, then cannot take its lease again: it pauses each
	// time, and the server stays up.
	require.Eventually(t, func() bool { return strings.Count(srv.logs.String(), `msg="event delivery paused"`) >= 2 }, 40*time.Second, 100*time.Millisecond,
		"delivery meets the outage, and tries its lease again")
	select {
	case err := <-srv.done:
		srv.done <- err
		t.Fatalf("the server exited with the database down: %v\n%s", err, srv.logs)
	default:
	}

	db.start(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, body := srv.do(t, "GET", "/org/get?organization_name=Acme", "", nil)
		if status == http.StatusOK {
			assert.Equal(t, "Acme", body["organization_name"])
			break
		}
		require.True(t, time.Now().Before(deadline), "no service 30s after the database came back: %d", status)
		time.Sleep(100 * time.Millisecond)
	}
	status, _ = srv.do(t, "POST", "/admin/login", "", map[string]string{"email": "a@acme.com", "password": "SecurePass123"})
	assert.Equal(t, http.StatusOK, status, "login works again")
	// created, two logins: delivered once the database is back.
	require.Eventually(t, func() bool { return rc.distinct() == 3 }, 60*time.Second, 100*time.Millisecond, "delivery resumes")
}

// slowClient waits long enough to see a hang for what it is.
var slowClient = &http.Client{Timeout: 45 * time.Second}

// raw sends a request and returns the response, its body read and
// closed; a request that gets no answer fails the test.
func (s *server) raw(t *testing.T, method, path, token string, body any) *http.Response {
	t.Helper()
	res, err := slowClient.Do(s.request(t, method, path, token, body))
	require.NoError(t, err, "%s %s", method, path)
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}
