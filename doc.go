// Package tenancy manages organizations of a multi-tenant service on
// MongoDB: each organization has a unique name, an isolated tenant
// collection and an admin who logs in with a bcrypt-hashed password and
// receives a JWT scoped to that organization. Renaming an organization
// moves its tenant collection to the collection of the new name.
//
// A Manager holds the policy (naming rules, validation, ids, hashing,
// tokens and the order of each operation's steps) over a Store, which only
// persists. Use mongostore for MongoDB and memstore for unit tests:
//
//	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://localhost:27017"))
//	...
//	store, err := mongostore.New(client.Database("enterprise_db"))
//	...
//	if err := store.EnsureIndexes(ctx); err != nil { ... }
//	m, err := tenancy.New(store, tenancy.WithSigningSecret(secret))
//	...
//	go m.RunRecovery(ctx, time.Second) // settle what dead processes left, for as long as ctx lasts
//	org, err := m.CreateOrg(ctx, tenancy.CreateOrgParams{
//		Name:          "Acme Corporation",
//		AdminEmail:    "admin@acme.com",
//		AdminPassword: "MySecurePassword123",
//	})
//	tok, err := m.Login(ctx, "admin@acme.com", "MySecurePassword123")
//	claims, err := m.VerifyToken(tok.AccessToken) // no database round trip
//	doc, err := m.Tenant(claims.OrgID).Insert(ctx, map[string]any{"name": "Widget"})
//
// Tenant data: Manager.Tenant gives a handle on an organization's tenant
// collection whose acknowledged writes are never lost or left in an old
// collection when another process renames the organization at the same
// time; Manager.InTenant runs the caller's own queries under the same
// guarantee. See Tenant for how.
//
// Crash safety: a create, rename or delete takes several steps and no
// transaction. Each runs under a lock on its organization that is a lease
// (WithOperationLease, 15 s), renewed while the operation works and
// fenced: an operation that cannot renew in time stops with ErrLeaseLost
// before anyone may take over. Each is recorded in a journal of operations
// in flight before its first step. RunRecovery, which every serving
// process should run, reads that journal every tick and settles each
// operation whose lease ran out: unacknowledged creates roll back,
// renames complete or roll back, deletes complete. Readers see one state
// meanwhile: an organization being deleted is gone for OrgByName, Login,
// AuthenticateToken and tenant calls alike.
//
// Errors match one of ErrNotFound, ErrConflict, ErrInvalid,
// ErrUnauthenticated and ErrForbidden under errors.Is; invalid input comes
// as a *ValidationError naming each bad field.
//
// Names: an organization's identifier is derived from its name, ignoring
// case, width, spaces and punctuation ("Tech Innovations Corp 2.0" is
// "tech-innovations-corp-2-0"), and names with the same identifier are the
// same organization. Its tenant collection is "tenant_" plus the identifier
// with "_" for "-". See Identifier.
package tenancy
