package tenancy

import (
	"runtime"
	"syscall"
)

// hashNice is the scheduling priority bcrypt runs at: below request
// handlers, so that a login flood leaves them the CPU they need (see
// WithHashConcurrency).
const hashNice = 10

// lowPriority runs f on an OS thread of lower scheduling priority. The
// thread exits when f returns, so that no other goroutine inherits it.
func lowPriority(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), hashNice)
		f()
	}()
	<-done
}
