package httpapi_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/httpapi"
	"github.com/tenancy/tenancy/memstore"
)

// An application's own routes, protected by the same tokens and roles:
// RequireAuth checks the token (and reads the member's role now), then
// RequirePermission checks the role.
func ExampleRequirePermission() {
	m, err := tenancy.New(memstore.New(),
		tenancy.WithSigningSecret([]byte("Xk3vQp8sLm2nRt7wYz5cBd9fGh1jKa4e")),
		tenancy.WithBcryptCost(tenancy.MinBcryptCost))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if _, err := m.CreateOrg(ctx, tenancy.CreateOrgParams{Name: "Acme", AdminEmail: "owner@acme.com", AdminPassword: "MySecurePassword123"}); err != nil {
		log.Fatal(err)
	}
	owner, _ := m.Login(ctx, "owner@acme.com", "MySecurePassword123")
	claims, _ := m.AuthenticateToken(ctx, owner.AccessToken)
	_, invite, _ := m.Invite(ctx, claims, tenancy.InviteParams{Email: "dev@acme.com"}) // a member
	member, err := m.AcceptInvitation(ctx, invite, "DevPassword123")
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	billing := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "billing of", httpapi.ClaimsFrom(r.Context()).OrgID == claims.OrgID)
	})
	mux.Handle("GET /billing", httpapi.RequireAuth(m)(httpapi.RequirePermission(tenancy.PermDeleteOrg)(billing)))

	for _, tok := range []*tenancy.Token{owner, member} {
		req := httptest.NewRequest("GET", "/billing", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		fmt.Println(tok.Role, rec.Code)
	}
	// Output:
	// owner 200
	// member 403
}
