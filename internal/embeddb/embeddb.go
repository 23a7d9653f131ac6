// Package embeddb runs FerretDB inside the process, on SQLite files, as a
// MongoDB-wire server reached only through a Unix socket in its data
// directory.
package embeddb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// SocketName is the name of the server's Unix socket in its directory.
const SocketName = "ferretdb.sock"

// maxSocketPath is the longest Unix socket path the kernel takes (108
// bytes of sun_path on Linux, with its terminating NUL).
const maxSocketPath = 107

// ErrLocked reports a directory another process serves already.
var ErrLocked = errors.New("embedded database directory is in use by another process")

// Start serves the SQLite databases under dir, creating dir (mode 0700)
// if needed, and returns the server's connection string and a function
// that stops it. The server listens on no TCP port: only on a Unix socket
// in dir, so that no other local user can reach it (the directory is
// 0700). Where dir's path is too long for a socket, the socket goes in a
// new 0700 directory under the system's temporary directory instead. A
// second Start on a directory a live process serves returns ErrLocked.
// FerretDB's own logs are discarded.
func Start(dir string) (uri string, stop func(), err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return "", nil, fmt.Errorf("embedded database directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("embedded database directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("embedded database directory: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return "", nil, err
	}
	sockDir := dir
	if len(filepath.Join(dir, SocketName)) > maxSocketPath {
		if sockDir, err = os.MkdirTemp("", "tenancy-db-"); err != nil {
			unlock()
			return "", nil, fmt.Errorf("embedded database socket directory: %w", err)
		}
	}
	sock := filepath.Join(sockDir, SocketName)
	// A socket left by a process that died is in the way; the lock says
	// no live process uses it.
	_ = os.Remove(sock)
	// Tables made by an earlier run get their _id index before the
	// server serves; later ones within indexEvery of their making.
	indexer := newIDIndexer(dir)
	_, _ = indexer.pass(context.Background()) // each later pass tries again
	cleanup := func() {
		indexer.close()
		_ = os.Remove(sock)
		if sockDir != dir {
			_ = os.Remove(sockDir)
		}
		unlock()
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{Unix: sock},
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("start embedded FerretDB: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	indexed := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx)
	}()
	go func() {
		defer close(indexed)
		indexer.run(ctx)
	}()
	stop = func() { cancel(); <-done; <-indexed; cleanup() }
	// Run listens in the background: return once the socket is there, so
	// that a client's first connection finds it.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case <-done:
			stop()
			return "", nil, errors.New("start embedded FerretDB: the server stopped before listening")
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("start embedded FerretDB: no socket at %s after 30s", sock)
		}
	}
	return f.MongoDBURI(), stop, nil
}
