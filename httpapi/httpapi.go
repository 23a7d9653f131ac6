// Package httpapi serves a tenancy.Manager over HTTP with the contract of
// the Organization Management API:
//
//	POST   /org/create     create an organization and its admin      201
//	GET    /org/get        look one up by ?organization_name=        200
//	PUT    /org/update     rename the token's organization (Bearer)  200
//	DELETE /org/delete     delete the token's organization (Bearer)  200
//	POST   /admin/login    exchange email and password for a token   200
//	POST   /admin/logout   revoke the presented token (Bearer)       200
//	PUT    /admin/password change the password, revoking older tokens (Bearer)  200
//	GET    /.well-known/jwks.json  public keys of EdDSA tokens       200
//	GET    /health         liveness                                  200
//	GET    /ready          the database answers                      200 or 503
//	POST   /tenant/documents       add a JSON document to the token's organization (Bearer)  201
//	GET    /tenant/documents       list them, ?limit= and ?after= (Bearer)                    200
//	GET    /tenant/documents/{id}  read one (Bearer)                                          200
//	DELETE /tenant/documents/{id}  delete one (Bearer)                                        200
//	GET    /openapi.json   the OpenAPI 3.1 document; /docs/ and /redoc/ render it
//
// Errors are RFC 9457 problem details (application/problem+json) with a
// human "detail" and, for 400 and 409, the offending fields.
//
// The handler works at the root or under a prefix, on any router:
//
//	mux.Handle("/api/", http.StripPrefix("/api", httpapi.New(m)))     // net/http
//	r.Mount("/api/", http.StripPrefix("/api", httpapi.New(m)))        // chi
//
// RequireAuth protects an application's own routes with the same tokens.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/tenancy/tenancy"
)

// DefaultMaxBodyBytes is the default request body limit. Every request of
// this API fits in a few hundred bytes.
const DefaultMaxBodyBytes = 64 << 10

// Option configures the handler. New returns the error of the first
// option given a value it cannot use.
type Option func(*api) error

// WithLogger sets the logger for unexpected errors (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(a *api) error {
		if l == nil {
			return errors.New("httpapi: logger must not be nil")
		}
		a.log = l
		return nil
	}
}

// WithMaxBodyBytes sets the request body limit (default
// DefaultMaxBodyBytes); larger bodies get 413.
func WithMaxBodyBytes(n int64) Option {
	return func(a *api) error {
		if n <= 0 {
			return fmt.Errorf("httpapi: body limit %d must be positive", n)
		}
		a.maxBody = n
		return nil
	}
}

// WithTenantWait bounds how long a tenant document request waits for a
// rename or delete of its organization to finish before it gets 503 with
// Retry-After (default 10 s). A rename by renameCollection takes
// milliseconds; one that copies documents takes as long as the copy.
func WithTenantWait(d time.Duration) Option {
	return func(a *api) error {
		if d <= 0 {
			return fmt.Errorf("httpapi: tenant wait %v must be positive", d)
		}
		a.tenantWait = d
		return nil
	}
}

// WithReadyTimeout bounds the database ping of GET /ready (default 2 s).
func WithReadyTimeout(d time.Duration) Option {
	return func(a *api) error {
		if d <= 0 {
			return fmt.Errorf("httpapi: ready timeout %v must be positive", d)
		}
		a.readyTimeout = d
		return nil
	}
}

type api struct {
	m            *tenancy.Manager
	stateless    bool
	limiter      *ipLimiter
	loginRate    rate.Limit
	loginBurst   int
	trusted      []netip.Prefix
	log          *slog.Logger
	maxBody      int64
	readyTimeout time.Duration
	tenantWait   time.Duration
	requestHook  RequestHook
}

// New returns the API's http.Handler over m, or the error of the first
// invalid option.
func New(m *tenancy.Manager, opts ...Option) (http.Handler, error) {
	if m == nil {
		return nil, errors.New("httpapi: manager must not be nil")
	}
	a := &api{
		m:            m,
		log:          slog.New(slog.DiscardHandler),
		maxBody:      DefaultMaxBodyBytes,
		readyTimeout: 2 * time.Second,
		tenantWait:   10 * time.Second,
		loginRate:    DefaultLoginRate,
		loginBurst:   DefaultLoginBurst,
	}
	for _, opt := range opts {
		if err := opt(a); err != nil {
			return nil, err
		}
	}
	a.limiter = newIPLimiter(a.loginRate, a.loginBurst, a.trusted)
	mux := http.NewServeMux()
	routes := []struct {
		method, path string
		h            http.Handler
	}{
		{http.MethodPost, "/org/create", a.limit(http.HandlerFunc(a.createOrg))},
		{http.MethodGet, "/org/get", http.HandlerFunc(a.getOrg)},
		{http.MethodPut, "/org/update", a.limit(a.requireAuth(http.HandlerFunc(a.updateOrg)))},
		{http.MethodDelete, "/org/delete", a.requireAuth(http.HandlerFunc(a.deleteOrg))},
		{http.MethodPost, "/admin/login", a.limit(http.HandlerFunc(a.login))},
		{http.MethodPost, "/admin/logout", a.requireAuth(http.HandlerFunc(a.logout))},
		{http.MethodPut, "/admin/password", a.limit(a.requireAuth(http.HandlerFunc(a.changePassword)))},
		{http.MethodGet, "/.well-known/jwks.json", http.HandlerFunc(a.jwks)},
		{http.MethodPost, "/tenant/documents", a.requireAuth(http.HandlerFunc(a.insertDocument))},
		{http.MethodGet, "/tenant/documents", a.requireAuth(http.HandlerFunc(a.listDocuments))},
		{http.MethodGet, "/tenant/documents/{id}", a.requireAuth(http.HandlerFunc(a.getDocument))},
		{http.MethodDelete, "/tenant/documents/{id}", a.requireAuth(http.HandlerFunc(a.deleteDocument))},
		{http.MethodPost, "/org/invitations", a.requireAuth(http.HandlerFunc(a.invite))},
		{http.MethodGet, "/org/invitations", a.requireAuth(http.HandlerFunc(a.listInvitations))},
		{http.MethodDelete, "/org/invitations/{id}", a.requireAuth(http.HandlerFunc(a.revokeInvitation))},
		{http.MethodPost, "/invitations/accept", a.limit(http.HandlerFunc(a.acceptInvitation))},
		{http.MethodGet, "/org/members", a.requireAuth(http.HandlerFunc(a.listMembers))},
		{http.MethodGet, "/org/events", a.requireAuth(http.HandlerFunc(a.listEvents))},
		{http.MethodPut, "/org/members/{admin_id}", a.requireAuth(http.HandlerFunc(a.changeRole))},
		{http.MethodDelete, "/org/members/{admin_id}", a.requireAuth(http.HandlerFunc(a.removeMember))},
		{http.MethodPost, "/org/transfer", a.requireAuth(http.HandlerFunc(a.transfer))},
		{http.MethodGet, "/admin/me", a.requireAuth(http.HandlerFunc(a.me))},
		{http.MethodPost, "/admin/switch", a.requireAuth(http.HandlerFunc(a.switchOrg))},
		{http.MethodGet, "/health", http.HandlerFunc(health)},
		{http.MethodGet, "/ready", http.HandlerFunc(a.ready)},
		{http.MethodGet, "/openapi.json", http.HandlerFunc(serveOpenAPI)},
		{http.MethodGet, "/docs/", docsHandler()},
		{http.MethodGet, "/redoc/", redocHandler()},
		{http.MethodGet, "/docs", redirectSlash("docs/")},
		{http.MethodGet, "/redoc", redirectSlash("redoc/")},
	}
	methods := map[string][]string{}
	for _, rt := range routes {
		mux.Handle(rt.method+" "+rt.path, rt.h)
		methods[rt.path] = append(methods[rt.path], rt.method)
	}
	// Other methods on a known path get 405 with Allow, as problem
	// details; unknown paths get 404.
	for path, ms := range methods {
		if slices.Contains(ms, http.MethodGet) {
			ms = append(ms, http.MethodHead)
		}
		allow := strings.Join(ms, ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeProblem(w, r, Problem{Status: http.StatusMethodNotAllowed, Detail: "Method " + r.Method + " is not allowed here; allowed: " + allow})
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, Problem{Status: http.StatusNotFound, Detail: "No such endpoint: " + r.URL.Path})
	})
	return noSniff(withRequestID(a.observe(cleanPaths(mux)))), nil
}

// cleanPaths answers 404 to a path with empty, "." or ".." segments, which
// ServeMux would redirect to its clean form (a 307 that keeps the method
// and body) instead of answering it: no client of this API sends one. It
// looks at the path as sent, as ServeMux does: an escaped slash is part
// of a segment, such as a document id, whose handler refuses it.
func cleanPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		if strings.Contains(p, "//") || strings.Contains(p, "/./") || strings.Contains(p, "/../") ||
			strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..") {
			writeProblem(w, r, Problem{Status: http.StatusNotFound, Detail: "No such endpoint: " + p})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// redirectSlash sends a browser from /docs to docs/ relative to where the
// handler is mounted, so that it works under any prefix.
func redirectSlash(to string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", to)
		w.WriteHeader(http.StatusMovedPermanently)
	}
}

// orgBody is the wire form of an organization.
type orgBody struct {
	ID                     string `json:"id"`
	OrganizationName       string `json:"organization_name"`
	OrganizationIdentifier string `json:"organization_identifier"`
	TenantCollection       string `json:"tenant_collection"`
	AdminEmail             string `json:"admin_email"`
}

func orgBodyOf(o *tenancy.Org) orgBody {
	return orgBody{
		ID:                     string(o.ID),
		OrganizationName:       o.Name,
		OrganizationIdentifier: o.Identifier,
		TenantCollection:       o.TenantCollection,
		AdminEmail:             o.AdminEmail,
	}
}

type orgCredentials struct {
	OrganizationName, Email, Password string
}

func (c *orgCredentials) fields() map[string]*string {
	return map[string]*string{"organization_name": &c.OrganizationName, "email": &c.Email, "password": &c.Password}
}

func (a *api) createOrg(w http.ResponseWriter, r *http.Request) {
	var req orgCredentials
	if !a.decode(w, r, req.fields(), false) {
		return
	}
	org, err := a.m.CreateOrg(r.Context(), tenancy.CreateOrgParams{
		Name: req.OrganizationName, AdminEmail: req.Email, AdminPassword: req.Password,
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, orgBodyOf(org))
}

func (a *api) getOrg(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("organization_name")
	if name == "" {
		missingName(w, r, "organization_name query parameter is required")
		return
	}
	org, err := a.m.OrgByName(r.Context(), name)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, orgBodyOf(org))
}

// missingName answers a request without an organization name.
func missingName(w http.ResponseWriter, r *http.Request, detail string) {
	writeProblem(w, r, Problem{
		Status: http.StatusBadRequest,
		Detail: detail,
		Errors: []tenancy.FieldError{{Field: "organization_name", Message: "is required"}},
	})
}

type updateResult struct {
	Message                string `json:"message"`
	PreviousCollection     string `json:"previous_collection"`
	CurrentCollection      string `json:"current_collection"`
	DocumentsMigrated      int64  `json:"documents_migrated"`
	OrganizationIdentifier string `json:"organization_identifier"`
}

// updateOrg renames the token's organization. The body's email and
// password re-authenticate: wrong ones are 401, another admin's are 403.
func (a *api) updateOrg(w http.ResponseWriter, r *http.Request) {
	claims := ClaimsFrom(r.Context())
	var req orgCredentials
	if !a.decode(w, r, req.fields(), false) {
		return
	}
	if err := validate(
		func() error { _, err := tenancy.Identifier(req.OrganizationName); return err },
		func() error { _, err := tenancy.NormalizeEmail(req.Email); return err },
		func() error { return tenancy.CheckPassword(req.Password) },
	); err != nil {
		a.writeError(w, r, err)
		return
	}
	admin, err := a.m.AuthenticatePassword(r.Context(), req.Email, req.Password)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if admin.ID != claims.AdminID {
		a.writeError(w, r, fmt.Errorf("credentials of another account: %w", tenancy.ErrForbidden))
		return
	}
	if !claims.Can(tenancy.PermRenameOrg) {
		a.writeError(w, r, fmt.Errorf("role %q may not rename the organization: %w", claims.Role, tenancy.ErrForbidden))
		return
	}
	res, err := a.m.RenameOrgAs(r.Context(), claims, req.OrganizationName)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, updateResult{
		Message:                "Organization updated successfully",
		PreviousCollection:     res.PreviousCollection,
		CurrentCollection:      res.CurrentCollection,
		DocumentsMigrated:      res.DocumentsMigrated,
		OrganizationIdentifier: res.Org.Identifier,
	})
}

// validate runs every check and merges their *tenancy.ValidationErrors,
// so that one response names every bad field.
func validate(checks ...func() error) error {
	var all tenancy.ValidationError
	for _, check := range checks {
		var verr *tenancy.ValidationError
		if err := check(); errors.As(err, &verr) {
			all.Fields = append(all.Fields, verr.Fields...)
		}
	}
	if len(all.Fields) == 0 {
		return nil
	}
	return &all
}

func (a *api) deleteOrg(w http.ResponseWriter, r *http.Request) {
	claims := ClaimsFrom(r.Context())
	var name string
	if !a.decode(w, r, map[string]*string{"organization_name": &name}, true) {
		return
	}
	if name == "" {
		name = r.URL.Query().Get("organization_name")
	}
	if name == "" {
		missingName(w, r, "organization_name is required, in the JSON body or the query")
		return
	}
	// The contract names the organization to delete, and only its own
	// admin may delete it: the name must lead to the token's
	// organization.
	org, err := a.m.OrgByName(r.Context(), name)
	if err == nil && org.ID != claims.OrgID {
		err = fmt.Errorf("organization %q belongs to another admin: %w", name, tenancy.ErrForbidden)
	}
	if err == nil && !claims.Can(tenancy.PermDeleteOrg) {
		err = fmt.Errorf("role %q may not delete the organization: %w", claims.Role, tenancy.ErrForbidden)
	}
	if err == nil {
		err = a.m.DeleteOrgAs(r.Context(), claims)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": "Organization and all associated data have been deleted"})
}

type tokenBody struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	AdminID     string `json:"admin_id"`
	OrgID       string `json:"org_id"`
}

func (a *api) login(w http.ResponseWriter, r *http.Request) {
	var email, password, org string
	if !a.decode(w, r, map[string]*string{"email": &email, "password": &password, "organization_name": &org}, false) {
		return
	}
	tok, err := a.m.LoginTo(r.Context(), email, password, org)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tokenBodyOf(tok))
}

func tokenBodyOf(tok *tenancy.Token) tokenBody {
	return tokenBody{
		AccessToken: tok.AccessToken, TokenType: tok.TokenType,
		AdminID: string(tok.AdminID), OrgID: string(tok.OrgID),
	}
}

// healthBody is the spec's exact /health answer, encoded once.
var healthBody = []byte(`{"status":"operational","service":"Organization Management API"}` + "\n")

func health(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(healthBody)
}

func (a *api) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), a.readyTimeout)
	defer cancel()
	if err := a.m.Ping(ctx); err != nil {
		a.log.WarnContext(r.Context(), "readiness check failed", "request_id", RequestID(r.Context()), "err", err)
		writeProblem(w, r, Problem{Status: http.StatusServiceUnavailable, Detail: "The database does not answer"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
