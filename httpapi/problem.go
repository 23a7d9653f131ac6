package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tenancy/tenancy"
)

// Problem is an RFC 9457 problem details body. Detail is always set, so
// clients that read FastAPI's "detail" keep working.
type Problem struct {
	Type      string               `json:"type"`
	Title     string               `json:"title"`
	Status    int                  `json:"status"`
	Detail    string               `json:"detail"`
	Instance  string               `json:"instance,omitempty"`
	RequestID string               `json:"request_id,omitempty"`
	Errors    []tenancy.FieldError `json:"errors,omitempty"`
}

// writeProblem sends p as application/problem+json.
func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	p.Instance = r.URL.Path
	p.RequestID = RequestID(r.Context())
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tenancy"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	// Also for RequireAuth's answers, on routes New does not serve.
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// statusOf maps tenancy's error kinds to HTTP statuses; any other error is
// a 500. It is the one place that decides this mapping.
func statusOf(err error) int {
	switch {
	case errors.Is(err, tenancy.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, tenancy.ErrUnauthenticated):
		return http.StatusUnauthorized
	case errors.Is(err, tenancy.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, tenancy.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, tenancy.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, tenancy.ErrThrottled):
		return http.StatusTooManyRequests
	case errors.Is(err, tenancy.ErrOverloaded), errors.Is(err, tenancy.ErrLeaseLost), errors.Is(err, tenancy.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// details are the human messages per status where the error itself does
// not carry one fit to show.
var details = map[int]string{
	http.StatusUnauthorized:       "Invalid credentials",
	http.StatusForbidden:          "Not authorized to manage this organization",
	http.StatusNotFound:           "Organization not found",
	http.StatusConflict:           "Another operation on this organization is in progress; retry shortly",
	http.StatusTooManyRequests:    "Too many failed attempts for this account; retry after the time in Retry-After",
	http.StatusServiceUnavailable: "The server is busy; retry after the time in Retry-After",
}

// writeError answers err. Validation and conflict errors show their
// fields; other client errors get a fixed message, since wrapped store
// errors may name internals; unexpected errors are logged with the request
// id and answered as a bare 500.
func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	p := Problem{Status: status, Detail: details[status]}
	var retry *tenancy.RetryError
	if errors.As(err, &retry) {
		w.Header().Set("Retry-After", retryAfter(retry.After))
	}
	if errors.Is(err, tenancy.ErrUnavailable) {
		w.Header().Set("Retry-After", "2")
		p.Detail = "The database is unavailable; retry after the time in Retry-After"
	}
	var verr *tenancy.ValidationError
	var cerr *tenancy.ConflictError
	switch {
	case errors.As(err, &verr):
		msgs := make([]string, 0, len(verr.Fields))
		for _, f := range verr.Fields {
			p.Errors = append(p.Errors, f)
			msgs = append(msgs, f.Field+" "+f.Message)
		}
		p.Detail = strings.Join(msgs, "; ")
	case errors.As(err, &cerr):
		p.Errors = []tenancy.FieldError{{Field: cerr.Field, Message: cerr.Message}}
		p.Detail = cerr.Field + " " + cerr.Message
	case status == http.StatusInternalServerError && r.Context().Err() != nil:
		// The client went away (or the server is shutting down): the
		// answer reaches no one, and the failure is not the server's.
		a.log.InfoContext(r.Context(), "request ended before its work", "request_id", RequestID(r.Context()), "path", r.URL.Path, "err", err)
		p.Status, p.Detail = http.StatusServiceUnavailable, "The request was canceled"
	case status == http.StatusInternalServerError:
		a.log.ErrorContext(r.Context(), "request failed",
			"request_id", RequestID(r.Context()), "method", r.Method, "path", r.URL.Path, "err", err)
		p.Detail = "Internal server error; the request id identifies it in the server's logs"
	}
	writeProblem(w, r, p)
}

// writeErrorNotFound is writeError with detail as the message of a 404,
// for endpoints where what is not found is not an organization.
func (a *api) writeErrorNotFound(w http.ResponseWriter, r *http.Request, err error, detail string) {
	if statusOf(err) == http.StatusNotFound {
		writeProblem(w, r, Problem{Status: http.StatusNotFound, Detail: detail})
		return
	}
	a.writeError(w, r, err)
}

// missingField answers a request that lacks the required string field.
func missingField(w http.ResponseWriter, r *http.Request, field string) {
	writeProblem(w, r, Problem{Status: http.StatusBadRequest, Detail: field + " is required",
		Errors: []tenancy.FieldError{{Field: field, Message: "is required"}}})
}

// writeJSON sends v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// retryAfter is a Retry-After value: whole seconds, rounded up.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(int64(max(1, (d+time.Second-1)/time.Second)), 10)
}
