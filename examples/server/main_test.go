package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildServer compiles this command once per test run.
func buildServer(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "tenancy-server-"); buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "server"), ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return filepath.Join(binDir, "server")
}

// server is a running server subprocess.
type server struct {
	cmd  *exec.Cmd
	base string
	logs *syncBuffer
	done chan error
}

// syncBuffer is a bytes.Buffer safe to read while the process writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var (
	client     = &http.Client{Timeout: 10 * time.Second}
	listenAddr = regexp.MustCompile(`msg="serving the Organization Management API" addr=(\S+)`)
)

// cleanEnv is the test's environment without the server's variables, so
// that a developer's own settings do not leak in.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "MONGO_URI", "PRIMARY_DB", "SECRET_KEY", "ALGORITHM", "TOKEN_LIFETIME", "LOG_LEVEL", "PORT", "ADDR", "DATA_DIR", "BCRYPT_COST",
			"PREVIOUS_SECRET_KEYS", "ED25519_PRIVATE_KEY", "LOGIN_RATE_LIMIT", "TRUSTED_PROXIES", "RENAME_BY_COPY", "TENANT_QUOTA", "TENANT_DB", "DB_TIMEOUT", "MAX_CONNECTIONS",
			"CACHE_SIZE", "CACHE_MAX_STALE", "METRICS_ADDR", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// startServer runs the server in dir (default: an empty directory) on a
// port it picks itself, and waits until it is ready.
func startServer(t *testing.T, bin, dataDir, dir string, extra ...string) *server {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Dir = dir
	if dir == "" {
		cmd.Dir = t.TempDir() // no stray .env
	}
	cmd.Env = cleanEnv(append([]string{"ADDR=127.0.0.1:0", "DATA_DIR=" + dataDir, "BCRYPT_COST=10"}, extra...)...)
	s := &server{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	require.NoError(t, cmd.Start())
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			t.Logf("server logs:\n%s", s.logs)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if s.base == "" {
			if m := listenAddr.FindStringSubmatch(s.logs.String()); m != nil {
				s.base = "http://" + m[1]
			}
		}
		if s.base != "" {
			res, err := client.Get(s.base + "/ready")
			if err == nil {
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					return s
				}
			}
		}
		select {
		case err := <-s.done:
			t.Fatalf("server exited before ready: %v\n%s", err, s.logs)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("server not ready within 60s:\n%s", s.logs)
	return nil
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		require.NoError(t, err, "exit status after SIGTERM")
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop within 30s of SIGTERM")
	}
}

// request makes a request to s, with body as JSON and token as Bearer
// when they are set.
func (s *server) request(t *testing.T, method, path, token string, body any) *http.Request {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, r)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

func (s *server) do(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	res, err := client.Do(s.request(t, method, path, token, body))
	require.NoError(t, err)
	defer res.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	return res.StatusCode, out
}

// TestSpecWalkthrough runs the specification's own sequence against the
// built server on its embedded database, then restarts it on the same
// data directory.
func TestSpecWalkthrough(t *testing.T) {
	bin := buildServer(t)
	dataDir := t.TempDir()
	s := startServer(t, bin, dataDir, "")

	status, body := s.do(t, "GET", "/health", "", nil)
	assert.Equal(t, 200, status)
	assert.Equal(t, map[string]any{"status": "operational", "service": "Organization Management API"}, body)

	status, created := s.do(t, "POST", "/org/create", "", map[string]string{
		"organization_name": "Acme Corporation", "email": "admin@acme.com", "password": "MySecurePassword123",
	})
	require.Equal(t, 201, status, created)
	assert.Equal(t, "Acme Corporation", created["organization_name"])
	assert.Equal(t, "acme-corporation", created["organization_identifier"])
	assert.Equal(t, "tenant_acme_corporation", created["tenant_collection"])
	assert.Equal(t, "admin@acme.com", created["admin_email"])
	assert.Regexp(t, "^[0-9a-f]{24}$", created["id"])

	status, got := s.do(t, "GET", "/org/get?organization_name=Acme%20Corporation", "", nil)
	assert.Equal(t, 200, status)
	assert.Equal(t, created, got)

	status, tok := s.do(t, "POST", "/admin/login", "", map[string]string{"email": "admin@acme.com", "password": "MySecurePassword123"})
	require.Equal(t, 200, status, tok)
	assert.Equal(t, "bearer", tok["token_type"])
	assert.Equal(t, created["id"], tok["org_id"])
	assert.Regexp(t, "^[0-9a-f]{24}$", tok["admin_id"])
	token := tok["access_token"].(string)

	status, updated := s.do(t, "PUT", "/org/update", token, map[string]string{
		"organization_name": "Acme Global Inc", "email": "admin@acme.com", "password": "MySecurePassword123",
	})
	require.Equal(t, 200, status, updated)
	assert.Equal(t, map[string]any{
		"message":                 "Organization updated successfully",
		"previous_collection":     "tenant_acme_corporation",
		"current_collection":      "tenant_acme_global_inc",
		"documents_migrated":      float64(1),
		"organization_identifier": "acme-global-inc",
	}, updated)

	status, deleted := s.do(t, "DELETE", "/org/delete", token, map[string]string{"organization_name": "Acme Global Inc"})
	require.Equal(t, 200, status, deleted)
	assert.Equal(t, "Organization and all associated data have been deleted", deleted["message"])
	status, _ = s.do(t, "GET", "/org/get?organization_name=Acme%20Global%20Inc", "", nil)
	assert.Equal(t, 404, status)

	// Data that must survive a restart: an org, and a token signed with
	// the generated secret.
	status, startup := s.do(t, "POST", "/org/create", "", map[string]string{
		"organization_name": "StartUp Labs", "email": "founder@startup.com", "password": "SecurePass123",
	})
	require.Equal(t, 201, status, startup)
	status, tok = s.do(t, "POST", "/admin/login", "", map[string]string{"email": "founder@startup.com", "password": "SecurePass123"})
	require.Equal(t, 200, status)
	startupToken := tok["access_token"].(string)
	status, doc := s.do(t, "POST", "/tenant/documents", startupToken, map[string]any{"customer": "Initech", "seats": 12})
	require.Equal(t, 201, status, doc)
	secret, err := os.ReadFile(filepath.Join(dataDir, "secret_key"))
	require.NoError(t, err)
	s.stop(t)
	assert.Contains(t, s.logs.String(), "shutdown complete")
	assert.Contains(t, s.logs.String(), "production should set SECRET_KEY")
	assert.Contains(t, s.logs.String(), "request_id=", "access log names the request id")

	s = startServer(t, bin, dataDir, "")
	status, got = s.do(t, "GET", "/org/get?organization_name=StartUp%20Labs", "", nil)
	require.Equal(t, 200, status, "the org survived the restart")
	assert.Equal(t, startup, got)
	status, updated = s.do(t, "PUT", "/org/update", startupToken, map[string]string{
		"organization_name": "StartUp Labs 2.0", "email": "founder@startup.com", "password": "SecurePass123",
	})
	require.Equal(t, 200, status, "a token from before the restart still verifies: %v", updated)
	assert.Equal(t, "tenant_startup_labs_2_0", updated["current_collection"])
	assert.Equal(t, float64(2), updated["documents_migrated"], "the tenant document and the metadata document")
	status, got = s.do(t, "GET", "/tenant/documents/"+doc["id"].(string), startupToken, nil)
	require.Equal(t, 200, status, "the tenant document survived the restart and moved with the rename")
	assert.Equal(t, doc, got)
	again, err := os.ReadFile(filepath.Join(dataDir, "secret_key"))
	require.NoError(t, err)
	assert.Equal(t, secret, again, "the secret is generated once")
}

// TestGracefulShutdown checks that a request in flight when SIGTERM
// arrives is answered.
func TestGracefulShutdown(t *testing.T) {
	bin := buildServer(t)
	s := startServer(t, bin, t.TempDir(), "")

	conn, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	body := `{"status":"x"}`
	// Send the headers and half of the body, so that the request is in
	// flight, then signal, then finish the body.
	_, err = fmt.Fprintf(conn, "POST /admin/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:5])
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	time.Sleep(300 * time.Millisecond)
	_, err = conn.Write([]byte(body[5:]))
	require.NoError(t, err)

	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "the in-flight request gets an answer")
	assert.Equal(t, http.StatusBadRequest, res.StatusCode, "login without email and password")
	res.Body.Close()
	select {
	case err := <-s.done:
		s.done <- err
		assert.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop")
	}
	assert.Contains(t, s.logs.String(), "shutdown complete")
}

// Secrets made with openssl rand -base64 48, for tests.
const (
	randomSecret = "q3J0v8Yl2mWc7Rt1pXbN5sKd9hLf4GzA6eUo0iTjMwQyVnHr8CaBxEk2DsPu7gZl"
	otherSecret  = "Zp4Lm9Qx2Tc7Vb1Nk8Rf3Hw6Jd0Ys5Ga2Ue9Io4Pl7Ks1Mq8Xn3Bv6Cz0Dr5Ft2Hg"
)

// TestConfigErrors checks that bad configuration stops the server with one
// clear line.
func TestConfigErrors(t *testing.T) {
	bin := buildServer(t)
	tests := []struct {
		desc string
		env  []string
		want string
	}{
		{"short secret", []string{"SECRET_KEY=too-short"}, "SECRET_KEY: signing secret is 9 bytes"},
		{"the .env.example placeholder", []string{"SECRET_KEY=your-very-secure-secret-key-change-in-production"}, "SECRET_KEY: signing secret is a placeholder"},
		{"a secret of one letter", []string{"SECRET_KEY=" + strings.Repeat("a", 32)}, "SECRET_KEY: signing secret has too little entropy"},
		{"unsupported algorithm", []string{"ALGORITHM=RS256"}, `ALGORITHM "RS256" is not supported`},
		{"alg none", []string{"ALGORITHM=none"}, `ALGORITHM "none" is not supported`},
		{"bad lifetime", []string{"TOKEN_LIFETIME=soon"}, "TOKEN_LIFETIME"},
		{"bad log level", []string{"LOG_LEVEL=LOUD"}, "LOG_LEVEL"},
		{"bad database name", []string{"PRIMARY_DB=my.db"}, `PRIMARY_DB "my.db"`},
		{"huge lifetime", []string{"TOKEN_LIFETIME=153722867280912931"}, "TOKEN_LIFETIME"},
		{"bad port", []string{"PORT=http"}, `PORT "http"`},
		{"bad addr", []string{"ADDR=localhost"}, `ADDR "localhost"`},
		{"bad metrics addr", []string{"METRICS_ADDR=9090"}, `METRICS_ADDR "9090" must be host:port`},
		{"short previous secret", []string{"PREVIOUS_SECRET_KEYS=" + randomSecret + ",short"}, "PREVIOUS_SECRET_KEYS: key 2: signing secret is 5 bytes"},
		{"bad Ed25519 key", []string{"ALGORITHM=EdDSA", "ED25519_PRIVATE_KEY=not-base64!"}, "ED25519_PRIVATE_KEY must be"},
		{"bad login rate", []string{"LOGIN_RATE_LIMIT=lots"}, `LOGIN_RATE_LIMIT "lots"`},
		{"NaN login rate", []string{"LOGIN_RATE_LIMIT=NaN"}, `LOGIN_RATE_LIMIT "NaN"`},
		{"bcrypt cost 31", []string{"BCRYPT_COST=31"}, `BCRYPT_COST "31" must be a number from 10 to 14`},
		{"bad cache size", []string{"CACHE_SIZE=lots"}, `CACHE_SIZE "lots"`},
		{"staleness bound on the embedded database", []string{"CACHE_MAX_STALE=2s"}, "CACHE_MAX_STALE applies with MONGO_URI"},
		{"bad staleness bound", []string{"MONGO_URI=mongodb://127.0.0.1:1/", "CACHE_MAX_STALE=0s"}, `CACHE_MAX_STALE "0s"`},
		{"bad proxy", []string{"TRUSTED_PROXIES=10.0.0.0/8,proxy.local"}, `TRUSTED_PROXIES: "proxy.local"`},
		{"unreachable database", []string{"MONGO_URI=mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300"}, "cannot reach the database"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			cmd := exec.Command(bin)
			cmd.Dir = t.TempDir()
			cmd.Env = cleanEnv(append([]string{"DATA_DIR=" + t.TempDir()}, tt.env...)...)
			if set := strings.Join(tt.env, " "); !strings.Contains(set, "PORT=") && !strings.Contains(set, "ADDR=") {
				cmd.Env = append(cmd.Env, "ADDR=127.0.0.1:0")
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "the server must refuse to start")
			assert.Equal(t, 1, exit.ExitCode())
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			assert.Contains(t, last, tt.want)
			assert.True(t, strings.HasPrefix(last, "server: "), "one line, no stack trace: %q", stderr.String())
			assert.NotContains(t, stderr.String(), "goroutine ")
		})
	}
}

// TestEnvFile checks that a .env file configures the server and that the
// environment wins over it.
func TestEnvFile(t *testing.T) {
	bin := buildServer(t)
	dir := t.TempDir()
	env := "# comment\nPRIMARY_DB=from_env_file\nTOKEN_LIFETIME=5\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"), []byte(env), 0o600))

	s := startServer(t, bin, t.TempDir(), dir)
	assert.Contains(t, s.logs.String(), "database=from_env_file")
	create := map[string]string{"organization_name": "Env Corp", "email": "a@env.com", "password": "SecurePass123"}
	status, _ := s.do(t, "POST", "/org/create", "", create)
	require.Equal(t, 201, status)
	status, tok := s.do(t, "POST", "/admin/login", "", map[string]string{"email": "a@env.com", "password": "SecurePass123"})
	require.Equal(t, 200, status)
	parts := strings.Split(tok["access_token"].(string), ".")
	require.Len(t, parts, 3)
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var claims struct{ Iat, Exp int64 }
	require.NoError(t, json.Unmarshal(payload, &claims))
	assert.Equal(t, int64(5*60), claims.Exp-claims.Iat, "TOKEN_LIFETIME from .env")
	s.stop(t)

	// The environment wins: the same .env, another database, so the org
	// created above is not there.
	s = startServer(t, bin, t.TempDir(), dir, "PRIMARY_DB=from_environment")
	status, _ = s.do(t, "GET", "/org/get?organization_name=Env%20Corp", "", nil)
	assert.Equal(t, 404, status)
	assert.Contains(t, s.logs.String(), "database=from_environment")
}

func TestLoadConfig(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	c, err := loadConfig(env())
	require.NoError(t, err)
	assert.Equal(t, defaultCacheSize, c.cacheSize, "the embedded database's sole-writer cache is on by default")
	assert.Zero(t, c.cacheStale)
	assert.Equal(t, "enterprise_db", c.database)
	assert.Equal(t, ":8000", c.addr)
	assert.Equal(t, "HS256", c.algorithm)
	assert.Equal(t, 60*time.Minute, c.tokenLifetime)
	assert.Equal(t, slog.LevelInfo, c.logLevel)
	assert.Equal(t, "data", c.dataDir)
	assert.False(t, c.secretFromEnv)

	for level, want := range map[string]slog.Level{"debug": slog.LevelDebug, "WARNING": slog.LevelWarn, "warn": slog.LevelWarn, "CRITICAL": slog.LevelError, "ERROR": slog.LevelError} {
		c, err := loadConfig(env("LOG_LEVEL", level))
		require.NoError(t, err, level)
		assert.Equal(t, want, c.logLevel, level)
	}
	c, err = loadConfig(env("PORT", "9000", "SECRET_KEY", randomSecret, "ALGORITHM", "HS512", "TOKEN_LIFETIME", "15"))
	require.NoError(t, err)
	assert.Equal(t, ":9000", c.addr)
	assert.True(t, c.secretFromEnv)
	assert.Equal(t, "HS512", c.algorithm)
	assert.Equal(t, 15*time.Minute, c.tokenLifetime)
	c, err = loadConfig(env("PORT", "9000", "ADDR", "127.0.0.1:7000"))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:7000", c.addr, "ADDR wins over PORT")

	seed := base64.StdEncoding.EncodeToString(make([]byte, 32))
	c, err = loadConfig(env("ALGORITHM", "EdDSA", "ED25519_PRIVATE_KEY", seed,
		"LOGIN_RATE_LIMIT", "0", "TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1"))
	require.NoError(t, err)
	assert.Equal(t, "EdDSA", c.algorithm)
	assert.Len(t, c.edSeed, 32)
	assert.Zero(t, c.loginRate, "0 switches the limit off")
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32")}, c.proxies)
	c, err = loadConfig(env("PREVIOUS_SECRET_KEYS", randomSecret+", "+otherSecret))
	require.NoError(t, err)
	assert.Len(t, c.previous, 2)
	_, err = loadConfig(env("ALGORITHM", "EdDSA", "ED25519_PRIVATE_KEY", seed, "PREVIOUS_SECRET_KEYS", randomSecret))
	assert.ErrorContains(t, err, "PREVIOUS_SECRET_KEYS verify HS256", "previous HMAC secrets cannot verify EdDSA tokens")

	c, err = loadConfig(env("MONGO_URI", "mongodb://db.example:27017/"))
	require.NoError(t, err)
	assert.Zero(t, c.cacheStale, "with MONGO_URI no cache unless a staleness bound is chosen")
	c, err = loadConfig(env("MONGO_URI", "mongodb://db.example:27017/", "CACHE_MAX_STALE", "2s", "CACHE_SIZE", "500"))
	require.NoError(t, err)
	assert.Equal(t, 2*time.Second, c.cacheStale)
	assert.Equal(t, 500, c.cacheSize)
	assert.Equal(t, "500 records, stale for at most 2s", c.cacheMode())
}

// TestLoadConfigRefusesUnsafeValues refuses the values that parse but
// would switch a protection off or hang the server: a login rate that is
// not a finite number (NaN compares false with everything, so it passed
// the range check and switched the limit off) and a bcrypt cost whose
// hashes take longer than about a second.
func TestLoadConfigRefusesUnsafeValues(t *testing.T) {
	tests := []struct{ name, value, want string }{
		{"LOGIN_RATE_LIMIT", "NaN", `LOGIN_RATE_LIMIT "NaN" must be a number`},
		{"LOGIN_RATE_LIMIT", "nan", `LOGIN_RATE_LIMIT "nan" must be a number`},
		{"LOGIN_RATE_LIMIT", "Inf", `LOGIN_RATE_LIMIT "Inf" must be a number`},
		{"LOGIN_RATE_LIMIT", "-Inf", `LOGIN_RATE_LIMIT "-Inf" must be a number`},
		{"LOGIN_RATE_LIMIT", "-1", `LOGIN_RATE_LIMIT "-1" must be a number`},
		{"BCRYPT_COST", "15", `BCRYPT_COST "15" must be a number from 10 to 14`},
		{"BCRYPT_COST", "31", `BCRYPT_COST "31" must be a number from 10 to 14`},
		{"BCRYPT_COST", "9", `BCRYPT_COST "9" must be a number from 10 to 14`},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			_, err := loadConfig(func(k string) string {
				if k == tt.name {
					return tt.value
				}
				return ""
			})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	c, err := loadConfig(func(k string) string {
		return map[string]string{"BCRYPT_COST": "14", "LOGIN_RATE_LIMIT": "0.5"}[k]
	})
	require.NoError(t, err)
	assert.Equal(t, 14, c.bcryptCost)
	assert.Equal(t, 0.5, c.loginRate)
}

// TestEdDSAServer runs the server with ALGORITHM=EdDSA and no key set:
// it generates one, and its tokens verify with the key it publishes.
func TestEdDSAServer(t *testing.T) {
	bin := buildServer(t)
	dataDir := t.TempDir()
	s := startServer(t, bin, dataDir, "", "ALGORITHM=EdDSA")
	defer s.stop(t)
	status, _ := s.do(t, "POST", "/org/create", "", map[string]string{"organization_name": "Acme", "email": "a@acme.com", "password": "SecurePass123"})
	require.Equal(t, 201, status)
	status, tok := s.do(t, "POST", "/admin/login", "", map[string]string{"email": "a@acme.com", "password": "SecurePass123"})
	require.Equal(t, 200, status)
	status, set := s.do(t, "GET", "/.well-known/jwks.json", "", nil)
	require.Equal(t, 200, status)
	keys := set["keys"].([]any)
	require.Len(t, keys, 1)
	x, err := base64.RawURLEncoding.DecodeString(keys[0].(map[string]any)["x"].(string))
	require.NoError(t, err)
	_, err = jwt.Parse(tok["access_token"].(string), func(*jwt.Token) (any, error) { return ed25519.PublicKey(x), nil }, jwt.WithValidMethods([]string{"EdDSA"}))
	assert.NoError(t, err)
	_, err = os.Stat(filepath.Join(dataDir, "ed25519_seed"))
	assert.NoError(t, err, "the generated key is kept")
}

// TestTenantQuotaConfig checks TENANT_QUOTA: none by default (a page
// costs its own documents on both databases), and a refusal of what is
// not a count; and TENANT_DB: its own database on the embedded database,
// PRIMARY_DB with MONGO_URI.
func TestTenantQuotaConfig(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	c, err := loadConfig(env())
	require.NoError(t, err)
	assert.Zero(t, c.tenantQuota, "embedded default")
	assert.Equal(t, "enterprise_db_tenants", c.tenantDB, "the embedded database's tenants in a database of their own")
	c, err = loadConfig(env("MONGO_URI", "mongodb://localhost:27017"))
	require.NoError(t, err)
	assert.Zero(t, c.tenantQuota, "MongoDB pages by index")
	assert.Equal(t, "enterprise_db", c.tenantDB, "MongoDB keeps the spec's layout")
	c, err = loadConfig(env("PRIMARY_DB", "acme", "TENANT_DB", "acme_data"))
	require.NoError(t, err)
	assert.Equal(t, "acme_data", c.tenantDB)
	for _, bad := range []string{"a.b", "x/y", strings.Repeat("d", 64)} {
		_, err := loadConfig(env("TENANT_DB", bad))
		require.ErrorContains(t, err, "TENANT_DB", bad)
	}
	_, err = loadConfig(env("PRIMARY_DB", strings.Repeat("p", 60)))
	require.ErrorContains(t, err, "TENANT_DB", "a PRIMARY_DB too long for the embedded default")
	c, err = loadConfig(env("TENANT_QUOTA", "500"))
	require.NoError(t, err)
	assert.Equal(t, int64(500), c.tenantQuota)
	c, err = loadConfig(env("TENANT_QUOTA", "0"))
	require.NoError(t, err)
	assert.Zero(t, c.tenantQuota, "0 switches it off")
	for _, bad := range []string{"-1", "many", "1e3"} {
		_, err := loadConfig(env("TENANT_QUOTA", bad))
		require.ErrorContains(t, err, "TENANT_QUOTA", bad)
	}

	assert.Equal(t, 2*time.Second, c.dbTimeout, "DB_TIMEOUT's default")
	c, err = loadConfig(env("DB_TIMEOUT", "7"))
	require.NoError(t, err)
	assert.Equal(t, 7*time.Second, c.dbTimeout)
	for _, bad := range []string{"0", "61", "2s", "NaN"} {
		_, err := loadConfig(env("DB_TIMEOUT", bad))
		require.ErrorContains(t, err, "DB_TIMEOUT", bad)
	}
	assert.Equal(t, 4096, c.maxConns, "MAX_CONNECTIONS's default")
	for _, bad := range []string{"0", "15", "x", "2000000"} {
		_, err := loadConfig(env("MAX_CONNECTIONS", bad))
		require.ErrorContains(t, err, "MAX_CONNECTIONS", bad)
	}
}
