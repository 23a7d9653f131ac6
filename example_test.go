package tenancy_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/memstore"
)

// signingSecret stands for a secret made with openssl rand -base64 48 and
// read from the environment, never one written in the code.
var signingSecret = []byte("Q2x7cVd3Zk1qR3B0TmhZc0x1YkE5ZWtWb1hpUTRyV2cwbjZUeUZtSjhkQ2w=")

// newExampleManager returns a Manager over an in-memory store with one
// organization, "Acme Corporation", whose admin is admin@acme.com.
func newExampleManager() (*tenancy.Manager, *tenancy.Org) {
	m, err := tenancy.New(memstore.New(),
		tenancy.WithSigningSecret(signingSecret),
		tenancy.WithBcryptCost(tenancy.MinBcryptCost),
	)
	if err != nil {
		log.Fatal(err)
	}
	org, err := m.CreateOrg(context.Background(), tenancy.CreateOrgParams{
		Name:          "Acme Corporation",
		AdminEmail:    "admin@acme.com",
		AdminPassword: "MySecurePassword123",
	})
	if err != nil {
		log.Fatal(err)
	}
	return m, org
}

func ExampleManager_CreateOrg() {
	m, err := tenancy.New(memstore.New(),
		tenancy.WithSigningSecret(signingSecret),
		tenancy.WithBcryptCost(tenancy.MinBcryptCost), // the default, 12, is for production
	)
	if err != nil {
		log.Fatal(err)
	}
	org, err := m.CreateOrg(context.Background(), tenancy.CreateOrgParams{
		Name:          "Tech Innovations Corp",
		AdminEmail:    "Admin@TechCorp.com",
		AdminPassword: "SecurePassword123",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(org.Name)
	fmt.Println(org.Identifier)
	fmt.Println(org.TenantCollection)
	fmt.Println(org.AdminEmail)

	_, err = m.CreateOrg(context.Background(), tenancy.CreateOrgParams{
		Name:          "TECH innovations corp.",
		AdminEmail:    "other@techcorp.com",
		AdminPassword: "SecurePassword123",
	})
	fmt.Println(errors.Is(err, tenancy.ErrConflict))
	// Output:
	// Tech Innovations Corp
	// tech-innovations-corp
	// tenant_tech_innovations_corp
	// admin@techcorp.com
	// true
}

func ExampleManager_OrgByName() {
	m, _ := newExampleManager()
	org, err := m.OrgByName(context.Background(), "acme corporation")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(org.Name, org.TenantCollection)

	_, err = m.OrgByName(context.Background(), "Nobody Inc")
	fmt.Println(errors.Is(err, tenancy.ErrNotFound))
	// Output:
	// Acme Corporation tenant_acme_corporation
	// true
}

func ExampleManager_OrgByID() {
	m, created := newExampleManager()
	org, err := m.OrgByID(context.Background(), created.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(org.Name)
	// Output: Acme Corporation
}

func ExampleManager_RenameOrg() {
	m, org := newExampleManager()
	res, err := m.RenameOrg(context.Background(), org.ID, "Acme Global Inc")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.PreviousCollection, "->", res.CurrentCollection)
	fmt.Println(res.Org.Identifier, res.DocumentsMigrated)
	// Output:
	// tenant_acme_corporation -> tenant_acme_global_inc
	// acme-global-inc 1
}

func ExampleManager_DeleteOrg() {
	m, org := newExampleManager()
	if err := m.DeleteOrg(context.Background(), org.ID); err != nil {
		log.Fatal(err)
	}
	_, err := m.OrgByName(context.Background(), "Acme Corporation")
	fmt.Println(errors.Is(err, tenancy.ErrNotFound))
	// Output: true
}

func ExampleManager_Login() {
	m, org := newExampleManager()
	tok, err := m.Login(context.Background(), "admin@acme.com", "MySecurePassword123")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.TokenType, tok.OrgID == org.ID)

	_, err = m.Login(context.Background(), "admin@acme.com", "not-the-password")
	fmt.Println(err)
	// Output:
	// bearer true
	// incorrect email or password: unauthenticated
}

func ExampleManager_AuthenticatePassword() {
	m, org := newExampleManager()
	admin, err := m.AuthenticatePassword(context.Background(), "ADMIN@acme.com", "MySecurePassword123")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(admin.Email, admin.OrgID == org.ID)
	// Output: admin@acme.com true
}

func ExampleManager_VerifyToken() {
	m, org := newExampleManager()
	tok, err := m.Login(context.Background(), "admin@acme.com", "MySecurePassword123")
	if err != nil {
		log.Fatal(err)
	}
	claims, err := m.VerifyToken(tok.AccessToken)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(claims.Email, claims.OrgID == org.ID)

	_, err = m.VerifyToken(tok.AccessToken + "x")
	fmt.Println(errors.Is(err, tenancy.ErrUnauthenticated))
	// Output:
	// admin@acme.com true
	// true
}

func ExampleManager_IssueToken() {
	m, org := newExampleManager()
	tok, err := m.IssueToken(&tenancy.Admin{ID: org.AdminID, Email: org.AdminEmail}, &tenancy.Membership{OrgID: org.ID, AdminID: org.AdminID, Role: tenancy.RoleOwner})
	if err != nil {
		log.Fatal(err)
	}
	claims, _ := m.VerifyToken(tok.AccessToken)
	fmt.Println(claims.AdminID == org.AdminID)
	// Output: true
}

func ExampleIdentifier() {
	id, err := tenancy.Identifier("Tech Innovations Corp 2.0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(id)
	fmt.Println(tenancy.TenantCollection(id))

	_, err = tenancy.Identifier("!!!")
	fmt.Println(err)
	// Output:
	// tech-innovations-corp-2-0
	// tenant_tech_innovations_corp_2_0
	// invalid input: organization_name must contain at least one letter or digit
}

func ExampleManager_Tenant() {
	m, org := newExampleManager()
	ctx := context.Background()
	tn := m.Tenant(org.ID)

	doc, err := tn.Insert(ctx, map[string]any{"name": "Widget", "price": 9.5})
	if err != nil {
		log.Fatal(err)
	}
	// The handle follows the organization through renames.
	if _, err := m.RenameOrg(ctx, org.ID, "Acme Global Inc"); err != nil {
		log.Fatal(err)
	}
	got, err := tn.Get(ctx, doc.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Data["name"], got.Data["price"])

	_, err = tn.Insert(ctx, map[string]any{"$where": "1 == 1"})
	fmt.Println(err)
	// Output:
	// Widget 9.5
	// invalid input: data.$where must not start with "$"
}

func ExampleManager_RunRecovery() {
	m, _ := newExampleManager()
	// Every serving process runs the loop for as long as it serves: it
	// settles the operations whose process died once their lease runs out.
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.RunRecovery(ctx, time.Second) }()

	stop() // at shutdown
	fmt.Println(<-done)
	// Output:
	// context canceled
}

func ExampleManager_RecoverPending() {
	m, _ := newExampleManager()
	// One tick of the recovery loop: nothing is in flight here.
	rep, err := m.RecoverPending(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%+v\n", rep)
	// Output:
	// {CreatesRolledBack:0 RenamesSettled:0 DeletesCompleted:0 MemberOperationsSettled:0 NamesReleased:0 Busy:0 Expired:0 EventsDeleted:0}
}

func ExampleManager_Invite() {
	m, _ := newExampleManager()
	ctx := context.Background()
	owner, err := m.Login(ctx, "admin@acme.com", "MySecurePassword123")
	if err != nil {
		log.Fatal(err)
	}
	claims, err := m.AuthenticateToken(ctx, owner.AccessToken)
	if err != nil {
		log.Fatal(err)
	}
	// The token is returned once (and given to WithInvitationNotifier's
	// function, to send): only its hash is stored.
	inv, token, err := m.Invite(ctx, claims, tenancy.InviteParams{Email: "dev@acme.com", Role: tenancy.RoleAdmin})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("invited", inv.Email, "as", inv.Role)

	// The invitee accepts with a password: a new account here.
	tok, err := m.AcceptInvitation(ctx, token, "DevPassword123")
	if err != nil {
		log.Fatal(err)
	}
	dev, err := m.AuthenticateToken(ctx, tok.AccessToken)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("joined as", dev.Role)
	fmt.Println("may rename:", dev.Can(tenancy.PermRenameOrg), "may delete:", dev.Can(tenancy.PermDeleteOrg))
	_, err = m.AcceptInvitation(ctx, token, "DevPassword123")
	fmt.Println("again:", errors.Is(err, tenancy.ErrNotFound))
	// Output:
	// invited dev@acme.com as admin
	// joined as admin
	// may rename: true may delete: false
	// again: true
}
