// Package mongotest gives tests a fresh MongoDB database on a real
// MongoDB-wire server, with nothing installed but Go.
//
// Where the server comes from:
//
//   - MONGODB_URI set: that server (a real mongod, a replica set, Atlas).
//   - TENANCY_TEST_MONGO=docker: a MongoDB container started through
//     testcontainers-go, which needs a reachable Docker engine.
//   - otherwise: FerretDB on SQLite files in a temporary directory.
//
// The container and FerretDB run in a helper process, the command
// github.com/tenancy/tenancy/internal/embeddb/serve, built from this
// repository's workspace, started on first use and shared by the tests of
// the binary. It is a module of its own, so that a module whose tests
// import mongotest does not get FerretDB, SQLite or the Docker client in
// its module graph. Outside the workspace, set MONGODB_URI.
//
// Each call to NewDatabase gets its own uniquely named database, dropped
// when the test ends, so tests may run in parallel. Call Main from TestMain
// to stop the server and remove its files when the tests are done:
//
//	func TestMain(m *testing.M) { mongotest.Main(m) }
package mongotest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Environment variables that choose the server.
const (
	EnvURI     = "MONGODB_URI"
	EnvBackend = "TENANCY_TEST_MONGO"
)

// DockerImage is the MongoDB image used with TENANCY_TEST_MONGO=docker.
const DockerImage = "mongo:8"

var server struct {
	once sync.Once
	uri  string
	err  error
	stop func()
}

// URI returns the connection string of the test server, starting the
// server on first use. It fails the test if the server cannot start.
func URI(t testing.TB) string {
	t.Helper()
	server.once.Do(func() {
		server.uri, server.stop, server.err = start()
	})
	if server.err != nil {
		t.Fatalf("mongotest: %v", server.err)
	}
	return server.uri
}

// Backend names the server tests run against: "uri", "docker" or "ferretdb".
func Backend() string {
	switch {
	case os.Getenv(EnvURI) != "":
		return "uri"
	case os.Getenv(EnvBackend) == "docker":
		return "docker"
	default:
		return "ferretdb"
	}
}

func start() (uri string, stop func(), err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	switch Backend() {
	case "uri":
		uri, stop = os.Getenv(EnvURI), func() {}
	case "docker":
		uri, stop, err = startHelper(ctx, "-docker", "-image", DockerImage)
	default:
		uri, stop, err = startHelper(ctx)
	}
	if err != nil {
		return "", nil, err
	}
	if err := waitPing(ctx, uri); err != nil {
		stop()
		return "", nil, err
	}
	return uri, stop, nil
}

// helperPackage is the command that runs the server for the tests.
const helperPackage = "github.com/tenancy/tenancy/internal/embeddb/serve"

// startHelper builds and runs the helper with args, and returns the
// connection string it prints; stop closes its standard input, which ends
// it, and waits for it.
func startHelper(ctx context.Context, args ...string) (uri string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "tenancy-mongotest-")
	if err != nil {
		return "", nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	bin, err := buildHelper(ctx, dir)
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start the test database: %w", err)
	}
	// The running helper needs its file no more: nothing is left behind
	// if this process dies without stop. The helper removes its own data
	// when its standard input closes, which the death of this process
	// does too.
	_ = os.RemoveAll(dir)
	stop = func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case uri = <-lines:
	case <-ctx.Done():
	}
	if uri == "" {
		stop()
		return "", nil, errors.New("the test database printed no connection string (its errors are above)")
	}
	return uri, stop, nil
}

// buildHelper builds the helper into dir, from this repository's
// workspace: outside it, set MONGODB_URI.
func buildHelper(ctx context.Context, dir string) (string, error) {
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goCmd); err != nil {
		goCmd = "go"
	}
	bin := filepath.Join(dir, "serve")
	out, err := exec.CommandContext(ctx, goCmd, "build", "-o", bin, helperPackage).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build the test database %s (it builds inside this repository's workspace; elsewhere set %s): %v\n%s",
			helperPackage, EnvURI, err, out)
	}
	return bin, nil
}

func waitPing(ctx context.Context, uri string) error {
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", uri, err)
	}
	defer func() { _ = c.Disconnect(context.Background()) }()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = c.Ping(pctx, nil)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("server at %s does not answer: %w", uri, errors.Join(err, ctx.Err()))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// NewDatabase returns a new, empty database on the test server, reached by
// its own client configured with opts (a command monitor, say). The
// database is dropped and the client disconnected when the test ends.
func NewDatabase(t testing.TB, opts ...*options.ClientOptions) *mongo.Database {
	t.Helper()
	uri := URI(t)
	c, err := mongo.Connect(append([]*options.ClientOptions{options.Client().ApplyURI(uri)}, opts...)...)
	if err != nil {
		t.Fatalf("mongotest: connect to %s: %v", uri, err)
	}
	db := c.Database(databaseName(t.Name()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := db.Drop(ctx); err != nil {
			t.Errorf("mongotest: drop database %s: %v", db.Name(), err)
		}
		_ = c.Disconnect(ctx)
	})
	return db
}

// databaseName derives a valid, unique database name from a test name:
// letters, digits and "_" only, at most 63 bytes (FerretDB's limit).
func databaseName(test string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(test) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	prefix := b.String()
	if len(prefix) > 40 {
		prefix = prefix[:40]
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	return "t_" + prefix + "_" + hex.EncodeToString(suffix)
}

// Main runs the tests of m, then each check (a failing check fails the
// run), then stops the server this package started and removes its files,
// and exits with the tests' status.
func Main(m *testing.M, checks ...func() error) {
	code := m.Run()
	if code == 0 {
		for _, check := range checks {
			if err := check(); err != nil {
				fmt.Fprintln(os.Stderr, "FAIL:", err)
				code = 1
			}
		}
	}
	if server.stop != nil {
		server.stop()
	}
	os.Exit(code)
}
