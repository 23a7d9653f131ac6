package tenancy

import "sync/atomic"

// CountHashCompares makes every bcrypt comparison count until the returned
// function is called; that function restores bcrypt and returns the count.
// Tests using it must not run in parallel with other logins.
func CountHashCompares() (stop func() int64) {
	var n atomic.Int64
	orig := compareHash
	compareHash = func(hash, password []byte) error {
		n.Add(1)
		return orig(hash, password)
	}
	return func() int64 {
		compareHash = orig
		return n.Load()
	}
}

// OvertakenRuns returns how many runs of tenant calls a rename or delete
// has overtaken in this process so far.
func OvertakenRuns() int64 { return overtaken.Load() }
