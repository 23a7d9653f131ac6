package tenancy

import (
	"errors"
	"time"
)

// Hooks are told what a Manager does, for metrics: set the ones you
// need (WithHooks); a nil one is not called. They run on the path of the
// request, so they must be fast, and safe for concurrent use. The
// reference server wires them to Prometheus; the library imports no
// metrics package.
type Hooks struct {
	// Login is told the result of each login (Login, LoginTo):
	// "success", "failure" (wrong credentials or bad input), "throttled"
	// (the back-off refused it) or "overloaded" (no bcrypt slot in time).
	// A login that failed for another reason (the database) is not told.
	Login func(result string)
	// PasswordHashWait is told how long each bcrypt hash or comparison
	// waited for a slot (WithHashConcurrency), whether it got one or not.
	PasswordHashWait func(time.Duration)
	// Operation is told the result of each operation that changes an
	// organization: operation is "create", "rename", "delete", "invite",
	// "revoke_invitation", "accept_invitation", "change_role",
	// "remove_member" or "transfer"; result is "success", or the kind of
	// error: "invalid", "unauthenticated", "forbidden", "not_found",
	// "conflict", "throttled", "overloaded", "unavailable", "lease_lost"
	// or "error".
	Operation func(operation, result string)
	// RecoverySettled is told, after each recovery pass that settled
	// anything, how many of each kind it settled: "create_rolled_back",
	// "rename", "delete", "member_operation", "name_released" or
	// "expired".
	RecoverySettled func(kind string, n int)
}

// WithHooks sets the hooks told what the Manager does (see Hooks).
func WithHooks(h Hooks) Option {
	return func(c *config) error {
		c.hooks = h
		return nil
	}
}

// resultOf names the kind of err for Hooks.Operation.
func resultOf(err error) string {
	for _, k := range []struct {
		err  error
		name string
	}{
		{ErrInvalid, "invalid"}, {ErrUnauthenticated, "unauthenticated"}, {ErrForbidden, "forbidden"},
		{ErrNotFound, "not_found"}, {ErrConflict, "conflict"}, {ErrThrottled, "throttled"},
		{ErrOverloaded, "overloaded"}, {ErrUnavailable, "unavailable"}, {ErrLeaseLost, "lease_lost"},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	if err == nil {
		return "success"
	}
	return "error"
}

// operation tells Hooks.Operation the result of operation, whose error
// *errp holds once the operation returns: defer m.operation("create", &err).
func (m *Manager) operation(operation string, errp *error) {
	if m.hooks.Operation != nil {
		m.hooks.Operation(operation, resultOf(*errp))
	}
}

// login tells Hooks.Login the result of a login that returned err.
func (m *Manager) login(err error) {
	if m.hooks.Login == nil {
		return
	}
	switch r := resultOf(err); r {
	case "success", "throttled", "overloaded":
		m.hooks.Login(r)
	case "invalid", "unauthenticated":
		m.hooks.Login("failure")
	}
}

// recoverySettled tells Hooks.RecoverySettled what rep settled.
func (m *Manager) recoverySettled(rep RecoveryReport) {
	if m.hooks.RecoverySettled == nil || !rep.settled() {
		return
	}
	for kind, n := range map[string]int{
		"create_rolled_back": rep.CreatesRolledBack, "rename": rep.RenamesSettled,
		"delete": rep.DeletesCompleted, "member_operation": rep.MemberOperationsSettled,
		"name_released": rep.NamesReleased, "expired": int(rep.Expired),
	} {
		if n > 0 {
			m.hooks.RecoverySettled(kind, n)
		}
	}
}

// hashWaited tells Hooks.PasswordHashWait how long a hash waited since
// start.
func (m *Manager) hashWaited(start time.Time) {
	if m.hooks.PasswordHashWait != nil {
		m.hooks.PasswordHashWait(time.Since(start))
	}
}
