package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEmbeddedDatabaseHasNoTCPListener starts the server on its embedded
// database and lists the TCP sockets its process listens on: only the
// HTTP port. The database is reached through a Unix socket in the 0700
// data directory, so another local user can neither connect to it nor
// reach its files.
func TestEmbeddedDatabaseHasNoTCPListener(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads the process's sockets from /proc")
	}
	bin := buildServer(t)
	dataDir := t.TempDir()
	s := startServer(t, bin, dataDir, "")
	status, _ := s.do(t, "GET", "/ready", "", nil)
	require.Equal(t, 200, status, "the embedded database answers")

	ports := listeningTCPPorts(t, s.cmd.Process.Pid)
	_, httpPort, _ := strings.Cut(strings.TrimPrefix(s.base, "http://127.0.0.1"), ":")
	assert.Equal(t, []string{httpPort}, ports, "the only TCP listener is the HTTP port")

	info, err := os.Stat(filepath.Join(dataDir, "db"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), info.Mode().Perm(), "the database directory is private")
	sock, err := os.Stat(filepath.Join(dataDir, "db", "ferretdb.sock"))
	require.NoError(t, err, "the database's socket is in its directory")
	assert.Equal(t, os.ModeSocket, sock.Mode().Type())
}

// TestSecondServerOnOneDataDir starts a second server on the data
// directory a running one uses: it must refuse to start, saying why,
// and leave the first serving.
func TestSecondServerOnOneDataDir(t *testing.T) {
	bin := buildServer(t)
	dataDir := t.TempDir()
	first := startServer(t, bin, dataDir, "")

	cmd := exec.Command(bin)
	cmd.Dir = t.TempDir()
	cmd.Env = cleanEnv("ADDR=127.0.0.1:0", "DATA_DIR="+dataDir, "BCRYPT_COST=10")
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the second server did not stop: %s", out)
	}
	require.Error(t, err, "the second server exits with an error")
	assert.Contains(t, string(out), "in use by another process", "it says why")
	assert.Contains(t, string(out), "DATA_DIR", "and what to change")

	status, _ := first.do(t, "GET", "/ready", "", nil)
	assert.Equal(t, 200, status, "the first server still serves")
}

// listeningTCPPorts returns the ports of the TCP sockets process pid
// listens on, in hex-decoded decimal, from /proc.
func listeningTCPPorts(t *testing.T, pid int) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	require.NoError(t, err)
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var ports []string
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		sc.Scan() // the header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// local_address rem_address st ... inode (field 9)
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(fields[1], ":")
			var port int
			_, _ = fmt.Sscanf(hexPort, "%X", &port)
			ports = append(ports, fmt.Sprint(port))
		}
		f.Close()
	}
	return ports
}
