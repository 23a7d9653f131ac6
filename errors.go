package tenancy

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors. Every error returned by a Manager or a Store that callers
// are expected to act on matches one of these under errors.Is; the wrapped
// message says what happened, the sentinel says what kind of thing it was.
var (
	// ErrNotFound reports that an organization, admin or collection does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict reports that a name, email or record is already taken or
	// was changed by someone else since it was read.
	ErrConflict = errors.New("conflict")
	// ErrInvalid reports input that breaks a rule; see ValidationError.
	ErrInvalid = errors.New("invalid input")
	// ErrUnauthenticated reports wrong credentials or a token that does not verify.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden reports an authenticated admin acting on an organization
	// that is not theirs.
	ErrForbidden = errors.New("forbidden")
	// ErrThrottled reports an account with too many failed logins in a
	// row: it may try again after the back-off (see RetryError).
	ErrThrottled = errors.New("too many failed attempts")
	// ErrOverloaded reports that the password-hashing capacity is taken
	// and the request waited for it too long (see RetryError).
	ErrOverloaded = errors.New("overloaded")
	// ErrLeaseLost reports an operation stopped because its process could
	// not renew the lease on its organization's lock in time: from then
	// on another process may settle the operation, so this one does
	// nothing more, not even its rollback.
	ErrLeaseLost = errors.New("operation lease lost")
	// ErrUnavailable reports a store that could not reach its database:
	// the request may be tried again once the database is back.
	ErrUnavailable = errors.New("database unavailable")
)

// RetryError reports a request refused for now: Kind is ErrThrottled or
// ErrOverloaded, After how long to wait before trying again. It matches
// Kind under errors.Is.
type RetryError struct {
	Kind  error
	After time.Duration
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("%v: retry after %v", e.Kind, e.After.Round(time.Second))
}

// Is reports whether target is e.Kind.
func (e *RetryError) Is(target error) bool { return target == e.Kind }

// FieldError is one broken rule of one input field. Field is the name the
// field has on the wire ("organization_name", "email", "password").
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every invalid field of one request. It matches
// ErrInvalid under errors.Is.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid input: ")
	for i, f := range e.Fields {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Field)
		b.WriteString(" ")
		b.WriteString(f.Message)
	}
	return b.String()
}

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// add records a broken rule; it is a no-op for an empty message.
func (e *ValidationError) add(field, message string) {
	if message != "" {
		e.Fields = append(e.Fields, FieldError{Field: field, Message: message})
	}
}

// err returns e as an error, or nil when no rule was broken.
func (e *ValidationError) err() error {
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// ConflictError reports that a unique value is taken. Field is the input
// field holding it ("organization_name" or "email"). It matches ErrConflict
// under errors.Is and unwraps to the store's error.
type ConflictError struct {
	Field   string
	Message string
	Err     error
}

func (e *ConflictError) Error() string { return e.Field + " " + e.Message }

// Is reports whether target is ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Unwrap returns the store's error.
func (e *ConflictError) Unwrap() error { return e.Err }
