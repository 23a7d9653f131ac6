//go:build !unix

package main

// openFileLimit reports no limit where the system has no rlimit.
func openFileLimit() (uint64, bool) { return 0, false }
