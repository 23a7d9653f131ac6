package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/tenancy/tenancy"
)

// Tenant document endpoints. Each runs on the organization of the token,
// through tenancy.Tenant, so an admin reaches only their organization's
// documents, and a write acknowledged here survives a concurrent rename.

// documentBody is the wire form of a tenant document.
type documentBody struct {
	ID   string         `json:"id"`
	Data map[string]any `json:"data"`
}

type documentPage struct {
	Documents []documentBody `json:"documents"`
	// NextAfter is the after parameter of the next page, or null on the
	// last page.
	NextAfter *string `json:"next_after"`
}

func (a *api) insertDocument(w http.ResponseWriter, r *http.Request) {
	data, err := a.readObject(w, r)
	if err != nil {
		a.bodyError(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.tenantWait)
	defer cancel()
	doc, err := a.m.Tenant(ClaimsFrom(r.Context()).OrgID).Insert(ctx, data)
	if err != nil {
		a.tenantError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, documentBody{ID: doc.ID, Data: doc.Data})
}

func (a *api) listDocuments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 20
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > tenancy.MaxListLimit {
			writeProblem(w, r, Problem{Status: http.StatusBadRequest, Detail: "limit must be an integer from 1 to " + strconv.Itoa(tenancy.MaxListLimit),
				Errors: []tenancy.FieldError{{Field: "limit", Message: "must be an integer from 1 to " + strconv.Itoa(tenancy.MaxListLimit)}}})
			return
		}
		limit = n
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.tenantWait)
	defer cancel()
	// One more than asked tells whether another page follows.
	docs, err := a.m.Tenant(ClaimsFrom(r.Context()).OrgID).List(ctx, q.Get("after"), limit+1)
	if err != nil {
		a.tenantError(w, r, err)
		return
	}
	page := documentPage{Documents: make([]documentBody, 0, min(len(docs), limit))}
	for _, d := range docs[:min(len(docs), limit)] {
		page.Documents = append(page.Documents, documentBody{ID: d.ID, Data: d.Data})
	}
	if len(docs) > limit {
		next := docs[limit-1].ID
		page.NextAfter = &next
	}
	writeJSON(w, http.StatusOK, page)
}

func (a *api) getDocument(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), a.tenantWait)
	defer cancel()
	doc, err := a.m.Tenant(ClaimsFrom(r.Context()).OrgID).Get(ctx, r.PathValue("id"))
	if err != nil {
		a.tenantError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, documentBody{ID: doc.ID, Data: doc.Data})
}

func (a *api) deleteDocument(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), a.tenantWait)
	defer cancel()
	if err := a.m.Tenant(ClaimsFrom(r.Context()).OrgID).Delete(ctx, r.PathValue("id")); err != nil {
		a.tenantError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": "Document deleted"})
}

// tenantError answers a failed tenant call. The middleware has checked
// that the token's organization exists, so a missing thing is the
// document (or an organization deleted during this very request). A call
// that outlasts the tenant wait is 503 with Retry-After, saying what it
// waited for: a rename, a page-read slot, or the database.
func (a *api) tenantError(w http.ResponseWriter, r *http.Request, err error) {
	timedOut := r.Context().Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, tenancy.ErrReadsBusy))
	switch {
	case errors.Is(err, tenancy.ErrNotFound):
		writeProblem(w, r, Problem{Status: http.StatusNotFound, Detail: "Document not found"})
	case timedOut && errors.Is(err, tenancy.ErrRenaming):
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, Problem{Status: http.StatusServiceUnavailable, Detail: "The organization is being renamed; retry shortly"})
	case timedOut && errors.Is(err, tenancy.ErrReadsBusy):
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, Problem{Status: http.StatusServiceUnavailable,
			Detail: fmt.Sprintf("Too many page reads of this organization run at once; this one waited %v; retry shortly", a.tenantWait)})
	case timedOut:
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, Problem{Status: http.StatusServiceUnavailable,
			Detail: fmt.Sprintf("The database did not answer within %v; retry shortly", a.tenantWait)})
	default:
		a.writeError(w, r, err)
	}
}
