// Package heapsample measures how much a piece of code grows the heap,
// for the tests and benchmarks that bound a request's memory.
package heapsample

import (
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// Start samples the bytes of live and unswept heap objects every half
// millisecond until the returned function is called, which returns the
// peak growth over the first sample. Call runtime.GC first, and lower
// GOGC, so that the peak is what the code holds rather than garbage the
// collector has yet to reach.
func Start() (stop func() uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(s); return s[0].Value.Uint64() }
	base := read()
	var peak atomic.Uint64
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(500 * time.Microsecond)
		defer t.Stop()
		for {
			if v := read(); v > base && v-base > peak.Load() {
				peak.Store(v - base)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return peak.Load()
	}
}
