package httpapi

import (
	"net/http"
	"strconv"

	"github.com/tenancy/tenancy"
)

type eventPage struct {
	Events    []*tenancy.Event `json:"events"`
	NextAfter *int64           `json:"next_after"`
}

// listEvents serves GET /org/events: the audit log of the token's
// organization, oldest first, for owners and admins.
func (a *api) listEvents(w http.ResponseWriter, r *http.Request) {
	limit, ok := pageLimit(w, r)
	if !ok {
		return
	}
	var after int64
	if s := r.URL.Query().Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			const msg = "must be a non-negative integer: the next_after of the previous page"
			writeProblem(w, r, Problem{Status: http.StatusBadRequest, Detail: "after " + msg,
				Errors: []tenancy.FieldError{{Field: "after", Message: msg}}})
			return
		}
		after = n
	}
	events, next, err := a.m.Events(r.Context(), ClaimsFrom(r.Context()), after, limit)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	page := eventPage{Events: events}
	if page.Events == nil {
		page.Events = []*tenancy.Event{}
	}
	if next != 0 {
		page.NextAfter = &next
	}
	writeJSON(w, http.StatusOK, page)
}
