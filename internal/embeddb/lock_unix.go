//go:build unix

package embeddb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive lock on dir's lock file for as long as the
// process lives or until the returned function is called. The kernel
// drops the lock of a process that dies, so a crash leaves nothing to
// clean up.
func lockDir(dir string) (func(), error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("embedded database lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s (stop the other server, or give this one another DATA_DIR)", ErrLocked, dir)
		}
		return nil, fmt.Errorf("embedded database lock: %w", err)
	}
	return func() { f.Close() }, nil
}
