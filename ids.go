package tenancy

import (
	"crypto/rand"
	"encoding/hex"
	"sync/atomic"
	"time"
)

// newObjectID returns a new ObjectID in hex: the time in seconds, then 8
// random bytes (where MongoDB's generator puts a per-process value and a
// counter), so that ids still sort by creation to the second but nothing
// can be derived from one about another: an admin's id from its
// organization's, or the next organization's from this one's.
func newObjectID(now time.Time) string {
	var b [12]byte
	s := uint32(now.Unix())
	b[0], b[1], b[2], b[3] = byte(s>>24), byte(s>>16), byte(s>>8), byte(s)
	_, _ = rand.Read(b[4:]) // crypto/rand.Read never fails; it aborts the program instead
	return hex.EncodeToString(b[:])
}

// newDocumentID returns a new ObjectID in hex for a tenant document: the
// time in seconds, 5 random bytes drawn once per process and a counter, as
// MongoDB's drivers make them, so that the documents one process inserts
// list in the order it inserted them. A document id names nothing outside
// its own tenant, which only that tenant's tokens reach.
func newDocumentID(now time.Time) string {
	var b [12]byte
	s := uint32(now.Unix())
	b[0], b[1], b[2], b[3] = byte(s>>24), byte(s>>16), byte(s>>8), byte(s)
	copy(b[4:9], processUnique[:])
	c := idCounter.Add(1)
	b[9], b[10], b[11] = byte(c>>16), byte(c>>8), byte(c)
	return hex.EncodeToString(b[:])
}

var (
	processUnique [5]byte
	idCounter     atomic.Uint32
)

func init() {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails; it aborts the program instead
	copy(processUnique[:], b[:5])
	idCounter.Store(uint32(b[5])<<16 | uint32(b[6])<<8 | uint32(b[7]))
}
