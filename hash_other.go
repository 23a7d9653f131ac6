//go:build !linux

package tenancy

// lowPriority runs f; only Linux lowers a thread's priority.
func lowPriority(f func()) { f() }
