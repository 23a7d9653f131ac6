package embeddb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestLongDirectory starts the server in a directory whose path is too
// long for a Unix socket: the socket goes in a private temporary
// directory instead, removed when the server stops, and a second Start
// on the same directory is refused.
func TestLongDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 120))
	uri, stop, err := Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	if strings.Contains(uri, "ddddd") {
		t.Fatalf("the socket is under the long directory: %s", uri)
	}
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	_ = c.Disconnect(context.Background())

	if _, _, err := Start(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("a second Start on a served directory: %v, want ErrLocked", err)
	}

	sock := strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")
	sock = strings.ReplaceAll(sock, "%2F", "/")
	info, err := os.Stat(filepath.Dir(sock))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o700 {
		t.Errorf("the socket's directory has mode %v, want 0700", info.Mode().Perm())
	}
	stop()
	stopped = true
	if _, err := os.Stat(filepath.Dir(sock)); !os.IsNotExist(err) {
		t.Errorf("the socket's temporary directory is left: %v", err)
	}
}
