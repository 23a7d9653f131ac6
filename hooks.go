package tenancy

import (
	"context"
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
	// Trace, if set, starts a span (or any scope) for an operation, as
	// Operation names them, and for "login" and "authenticate_token": the
	// Manager runs the operation in the context it returns, so that the
	// store's calls are its children, and calls end with the operation's
	// error.
	Trace func(ctx context.Context, operation string) (_ context.Context, end func(error))
	// EventDelivery is told the result of each delivery of an event by
	// DeliverEvents: "success", "failure" (to be tried again) or
	// "dropped" (given up), and the event's lag: how long after it was
	// recorded this delivery ended.
	EventDelivery func(result string, lag time.Duration)
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

// begin starts operation in ctx for the hooks (Trace, Operation), and
// returns the context to run it in and what to call with its error once
// it returns: ctx, done := m.begin(ctx, "create"); defer done(&err).
func (m *Manager) begin(ctx context.Context, operation string) (context.Context, func(*error)) {
	ctx, end := m.trace(ctx, operation)
	return ctx, func(errp *error) {
		end(*errp)
		if m.hooks.Operation != nil {
			m.hooks.Operation(operation, resultOf(*errp))
		}
	}
}

// trace starts name with Hooks.Trace, if set.
func (m *Manager) trace(ctx context.Context, name string) (context.Context, func(error)) {
	if m.hooks.Trace == nil {
		return ctx, func(error) {}
	}
	return m.hooks.Trace(ctx, name)
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

// eventDelivered tells Hooks.EventDelivery the result of a delivery of
// ev.
func (m *Manager) eventDelivered(result string, ev *Event) {
	if m.hooks.EventDelivery != nil {
		m.hooks.EventDelivery(result, m.now().Sub(ev.At))
	}
}

// hashWaited tells Hooks.PasswordHashWait how long a hash waited since
// start.
func (m *Manager) hashWaited(start time.Time) {
	if m.hooks.PasswordHashWait != nil {
		m.hooks.PasswordHashWait(time.Since(start))
	}
}
