package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/tenancy/tenancy"
)

// Member, invitation and organization-switching endpoints. Each checks
// the caller's role as the Manager reads it now (tenancy.Claims.Role from
// AuthenticateToken), not as the token says.

// RequirePermission returns middleware, for routes behind RequireAuth,
// that lets a request through only if the role of its token has
// permission p (tenancy.Claims.Can); others get 403 problem details, and
// requests without claims 401.
func RequirePermission(p tenancy.Permission) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := ClaimsFrom(r.Context())
			switch {
			case c == nil:
				writeProblem(w, r, Problem{Status: http.StatusUnauthorized, Detail: "Not authenticated: send Authorization: Bearer <token>"})
			case !c.Can(p):
				writeProblem(w, r, Problem{Status: http.StatusForbidden, Detail: "The role " + strconv.Quote(string(c.Role)) + " may not do this"})
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

type invitationBody struct {
	ID               string `json:"id"`
	Email            string `json:"email"`
	Role             string `json:"role"`
	OrganizationName string `json:"organization_name"`
	ExpiresAt        string `json:"expires_at"`
	Token            string `json:"token"`
}

type pendingInvitation struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	Role      string `json:"role"`
	ExpiresAt string `json:"expires_at"`
	InvitedBy string `json:"invited_by"`
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (a *api) invite(w http.ResponseWriter, r *http.Request) {
	var email, role string
	if !a.decode(w, r, map[string]*string{"email": &email, "role": &role}, false) {
		return
	}
	claims := ClaimsFrom(r.Context())
	inv, token, err := a.m.Invite(r.Context(), claims, tenancy.InviteParams{Email: email, Role: tenancy.Role(role)})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var name string
	if org, err := a.m.OrgByID(r.Context(), inv.OrgID); err == nil {
		name = org.Name
	}
	writeJSON(w, http.StatusCreated, invitationBody{
		ID: inv.ID, Email: inv.Email, Role: string(inv.Role), OrganizationName: name,
		ExpiresAt: rfc3339(inv.ExpiresAt), Token: token,
	})
}

func (a *api) listInvitations(w http.ResponseWriter, r *http.Request) {
	invs, err := a.m.Invitations(r.Context(), ClaimsFrom(r.Context()))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := make([]pendingInvitation, len(invs))
	for i, inv := range invs {
		out[i] = pendingInvitation{ID: inv.ID, Email: inv.Email, Role: string(inv.Role), ExpiresAt: rfc3339(inv.ExpiresAt), InvitedBy: string(inv.InvitedBy)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"invitations": out})
}

func (a *api) revokeInvitation(w http.ResponseWriter, r *http.Request) {
	if err := a.m.RevokeInvitation(r.Context(), ClaimsFrom(r.Context()), r.PathValue("id")); err != nil {
		a.writeErrorNotFound(w, r, err, "Invitation not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": "Invitation revoked"})
}

func (a *api) acceptInvitation(w http.ResponseWriter, r *http.Request) {
	var token, password string
	if !a.decode(w, r, map[string]*string{"token": &token, "password": &password}, false) {
		return
	}
	if token == "" {
		missingField(w, r, "token")
		return
	}
	tok, err := a.m.AcceptInvitation(r.Context(), token, password)
	if err != nil {
		a.writeErrorNotFound(w, r, err, "Invitation token unknown, used, revoked or expired")
		return
	}
	writeJSON(w, http.StatusOK, tokenBodyOf(tok))
}

type memberBody struct {
	AdminID  string `json:"admin_id"`
	Email    string `json:"email"`
	Role     string `json:"role"`
	JoinedAt string `json:"joined_at"`
}

func memberBodyOf(mb tenancy.Member) memberBody {
	return memberBody{AdminID: string(mb.AdminID), Email: mb.Email, Role: string(mb.Role), JoinedAt: rfc3339(mb.JoinedAt)}
}

type memberPage struct {
	Members   []memberBody `json:"members"`
	NextAfter *string      `json:"next_after"`
}

func (a *api) listMembers(w http.ResponseWriter, r *http.Request) {
	limit, ok := pageLimit(w, r)
	if !ok {
		return
	}
	members, next, err := a.m.Members(r.Context(), ClaimsFrom(r.Context()), tenancy.AdminID(r.URL.Query().Get("after")), limit)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	page := memberPage{Members: make([]memberBody, len(members))}
	for i, mb := range members {
		page.Members[i] = memberBodyOf(mb)
	}
	if next != "" {
		s := string(next)
		page.NextAfter = &s
	}
	writeJSON(w, http.StatusOK, page)
}

// pageLimit reads the limit query parameter (default 20), answering 400
// itself for a bad one.
func pageLimit(w http.ResponseWriter, r *http.Request) (int, bool) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return 20, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > tenancy.MaxListLimit {
		msg := "must be an integer from 1 to " + strconv.Itoa(tenancy.MaxListLimit)
		writeProblem(w, r, Problem{Status: http.StatusBadRequest, Detail: "limit " + msg,
			Errors: []tenancy.FieldError{{Field: "limit", Message: msg}}})
		return 0, false
	}
	return n, true
}

func (a *api) changeRole(w http.ResponseWriter, r *http.Request) {
	var role string
	if !a.decode(w, r, map[string]*string{"role": &role}, false) {
		return
	}
	parsed, err := tenancy.ParseRole("role", role)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	mb, err := a.m.ChangeRole(r.Context(), ClaimsFrom(r.Context()), tenancy.AdminID(r.PathValue("admin_id")), parsed)
	if err != nil {
		a.writeErrorNotFound(w, r, err, "Member not found")
		return
	}
	writeJSON(w, http.StatusOK, memberBodyOf(*mb))
}

func (a *api) removeMember(w http.ResponseWriter, r *http.Request) {
	if err := a.m.RemoveMember(r.Context(), ClaimsFrom(r.Context()), tenancy.AdminID(r.PathValue("admin_id"))); err != nil {
		a.writeErrorNotFound(w, r, err, "Member not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": "Member removed"})
}

func (a *api) transfer(w http.ResponseWriter, r *http.Request) {
	var admin string
	if !a.decode(w, r, map[string]*string{"admin_id": &admin}, false) {
		return
	}
	if admin == "" {
		missingField(w, r, "admin_id")
		return
	}
	org, err := a.m.TransferOwnership(r.Context(), ClaimsFrom(r.Context()), tenancy.AdminID(admin))
	if err != nil {
		a.writeErrorNotFound(w, r, err, "Not a member of this organization")
		return
	}
	writeJSON(w, http.StatusOK, orgBodyOf(org))
}

type orgMembership struct {
	OrgID            string `json:"org_id"`
	OrganizationName string `json:"organization_name"`
	Role             string `json:"role"`
}

type meBody struct {
	AdminID       string          `json:"admin_id"`
	Email         string          `json:"email"`
	OrgID         string          `json:"org_id"`
	Role          string          `json:"role"`
	Organizations []orgMembership `json:"organizations"`
}

func (a *api) me(w http.ResponseWriter, r *http.Request) {
	acc, err := a.m.Me(r.Context(), ClaimsFrom(r.Context()))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	body := meBody{AdminID: string(acc.AdminID), Email: acc.Email, OrgID: string(acc.OrgID), Role: string(acc.Role),
		Organizations: make([]orgMembership, len(acc.Organizations))}
	for i, o := range acc.Organizations {
		body.Organizations[i] = orgMembership{OrgID: string(o.OrgID), OrganizationName: o.OrganizationName, Role: string(o.Role)}
	}
	writeJSON(w, http.StatusOK, body)
}

func (a *api) switchOrg(w http.ResponseWriter, r *http.Request) {
	var name string
	if !a.decode(w, r, map[string]*string{"organization_name": &name}, false) {
		return
	}
	if name == "" {
		missingName(w, r, "organization_name is required")
		return
	}
	tok, err := a.m.SwitchOrg(r.Context(), ClaimsFrom(r.Context()), name)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tokenBodyOf(tok))
}
