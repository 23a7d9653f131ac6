package tenancy

import (
	"context"
	"time"
)

// Store persists organizations, admin accounts, name reservations and tenant
// collections. It holds no policy: validation, ids, hashing, clocks and the
// order of the steps of an operation belong to the Manager. Implementations
// must be safe for concurrent use, must not retain or share the values passed
// to or returned from them, and must return an error matching ctx.Err() when
// ctx is already done, without writing anything.
//
// Errors: a missing record gives ErrNotFound, a taken unique value
// (id, identifier, email) or a stale version gives ErrConflict; other errors
// are failures of the backend and keep their cause.
type Store interface {
	OrgStore
	JournalStore
	AdminStore
	LoginFailureStore
	RevocationStore
	CollectionStore
	DocumentStore
	MemberStore
	InvitationStore
	EventStore
}

// OrgStore keeps the organization records and the reservations of their
// names, the one place uniqueness of identifiers is decided.
// Store's rules on concurrency, contexts and errors apply.
type OrgStore interface {
	// ReserveName claims identifier for org, stamped with at. It is the
	// only way uniqueness of identifiers is decided, so it must be an
	// atomic insert. Reserving a name the same org already holds succeeds;
	// a name held by another org gives ErrConflict.
	ReserveName(ctx context.Context, identifier string, org OrgID, at time.Time) error
	// Reservations returns the names reserved before before, for recovery
	// to find names no organization uses.
	Reservations(ctx context.Context, before time.Time) ([]Reservation, error)
	// ReleaseName gives up org's claim on identifier. Releasing a name that
	// is not held, or is held by another org, changes nothing and succeeds.
	ReleaseName(ctx context.Context, identifier string, org OrgID) error
	// CreateOrg inserts org. It gives ErrConflict if the id or the
	// identifier is already in use.
	CreateOrg(ctx context.Context, org *Org) error
	// OrgByID returns the org with id, or ErrNotFound.
	OrgByID(ctx context.Context, id OrgID) (*Org, error)
	// OrgByIdentifier returns the org whose Identifier is identifier, or
	// ErrNotFound. A store may find it through the name's reservation
	// (ReserveName), which the Manager always holds before an org bears a
	// name: an org whose name is not reserved by it may not be found.
	OrgByIdentifier(ctx context.Context, identifier string) (*Org, error)
	// UpdateOrg replaces the stored org that has org.ID and org.Version with
	// org, and on success increments org.Version to the stored version.
	// It gives ErrNotFound if no org has the id, and ErrConflict if the
	// stored version differs (someone else updated it since it was read).
	// The version check catches stale reads, but it is not atomic against a
	// concurrent update on every server (FerretDB reads, then writes), so
	// writers of one org must hold its lock (LockOrg). Callers must also
	// hold the reservation of a new Identifier first: an update onto a taken
	// identifier is refused, but not every server reports that as
	// ErrConflict (FerretDB answers InternalError).
	UpdateOrg(ctx context.Context, org *Org) error
	// DeleteOrg removes the org with id, or gives ErrNotFound.
	DeleteOrg(ctx context.Context, id OrgID) error
	// UnfinishedOrgs returns the orgs whose State is not OrgActive and
	// whose ModifiedAt is before before: operations that may have died.
	UnfinishedOrgs(ctx context.Context, before time.Time) ([]*Org, error)
}

// JournalStore keeps the locks of organizations under a multi-step
// operation and the journal of operations in flight, which recovery reads.
// Store's rules on concurrency, contexts and errors apply.
type JournalStore interface {
	// LockOrg claims org for owner until expires, so that one multi-step
	// operation at a time changes it. It must be an atomic insert: of
	// concurrent calls exactly one succeeds and the others get ErrConflict.
	// A lock whose expiry is before now is taken over.
	LockOrg(ctx context.Context, org OrgID, owner string, expires, now time.Time) error
	// RenewLock extends owner's lock on org until expires. It gives
	// ErrConflict if owner does not hold the lock: it was released, or
	// taken over after it expired.
	RenewLock(ctx context.Context, org OrgID, owner string, expires time.Time) error
	// UnlockOrg releases owner's lock on org. Releasing a lock that is not
	// held, or is held by another owner, changes nothing and succeeds.
	UnlockOrg(ctx context.Context, org OrgID, owner string) error
	// PutOperation records op in the journal of operations in flight,
	// replacing the entry of the same organization. Only the holder of
	// the organization's lock writes its entry.
	PutOperation(ctx context.Context, op *Operation) error
	// DeleteOperation removes org's entry from the journal; removing a
	// missing entry succeeds.
	DeleteOperation(ctx context.Context, org OrgID) error
	// Operations returns every entry of the journal. The journal holds
	// only what is in flight, so it is empty when nothing is pending, and
	// reading it must cost no more than its entries (on FerretDB: a
	// collection of its own).
	Operations(ctx context.Context) ([]*Operation, error)
}

// AdminStore keeps the admin accounts.
// Store's rules on concurrency, contexts and errors apply.
type AdminStore interface {
	// CreateAdmin inserts admin. It gives ErrConflict if the id or the email
	// (compared lower-cased) is already in use.
	CreateAdmin(ctx context.Context, admin *Admin) error
	// AdminByEmail returns the admin with the lower-cased email, or ErrNotFound.
	AdminByEmail(ctx context.Context, email string) (*Admin, error)
	// AdminByID returns the admin with id, or ErrNotFound.
	AdminByID(ctx context.Context, id AdminID) (*Admin, error)
	// DeleteAdmin removes the admin with id, or gives ErrNotFound.
	DeleteAdmin(ctx context.Context, id AdminID) error
	// SetAdminHome sets the organization an account logs in to when no
	// organization is named (Admin.OrgID). It gives ErrNotFound if there is
	// no such admin.
	SetAdminHome(ctx context.Context, id AdminID, org OrgID) error
	// SetAdminPassword replaces the password hash of the admin id and
	// increments its TokenGeneration, which rejects the tokens issued
	// before, and returns the new generation. It gives ErrNotFound if there
	// is no such admin.
	SetAdminPassword(ctx context.Context, id AdminID, hash []byte) (int64, error)
}

// LoginFailureStore counts failed logins, on an admin's account or on a
// record of the address alone, for the back-off.
// Store's rules on concurrency, contexts and errors apply.
type LoginFailureStore interface {
	// RecordLoginFailure counts a failed login for the lower-cased email,
	// at at: on its admin account (FailedLogins, LastFailedLogin) if known
	// says there is one, otherwise on a record of the address alone, so
	// that unknown addresses are throttled like known ones, at the same
	// cost.
	RecordLoginFailure(ctx context.Context, email string, known bool, at time.Time) error
	// ClaimLoginAttempt is RecordLoginFailure done only if the last
	// failure recorded for email is still last (zero: none), as one
	// compare-and-set; it reports whether it counted. Of concurrent claims
	// with the same last, at most one should succeed (on servers whose
	// updates read and then write, such as FerretDB, a few may).
	ClaimLoginAttempt(ctx context.Context, email string, known bool, last, at time.Time) (bool, error)
	// ResetLoginFailures clears the count of email, on its admin account
	// and on the record of the address alone.
	ResetLoginFailures(ctx context.Context, email string) error
	// LoginFailures returns the count and the last failure of an email
	// that has no admin account (zero if none was recorded).
	LoginFailures(ctx context.Context, email string) (int, time.Time, error)
}

// RevocationStore keeps the ids of revoked tokens until they expire, and
// forgets what has expired.
// Store's rules on concurrency, contexts and errors apply.
type RevocationStore interface {
	// RevokeToken records the token id jti as revoked; it may be forgotten
	// after expires, when the token expires. Revoking twice succeeds.
	RevokeToken(ctx context.Context, jti string, expires time.Time) error
	// TokenRevoked reports whether jti was revoked.
	TokenRevoked(ctx context.Context, jti string) (bool, error)
	// DeleteExpired removes the revocations that expired before now and
	// the login failures of addresses without an admin account whose last
	// failure is before failuresBefore, and returns how many records it
	// removed.
	DeleteExpired(ctx context.Context, now, failuresBefore time.Time) (int64, error)
}

// CollectionStore creates, renames, copies and drops the tenant
// collections.
// Store's rules on concurrency, contexts and errors apply.
type CollectionStore interface {
	// CreateTenantCollection creates the collection name holding one
	// metadata document stamped with createdAt and owner, the org it is
	// created for. It gives ErrConflict if the collection exists.
	CreateTenantCollection(ctx context.Context, name string, owner OrgID, createdAt time.Time) error
	// TenantCollectionOwner returns the owner stamped in the collection's
	// metadata document. It gives ErrNotFound if the collection or its
	// stamp is missing (a collection not created by CreateTenantCollection).
	TenantCollectionOwner(ctx context.Context, name string) (OrgID, error)
	// TenantCollectionExists reports whether the collection name exists.
	TenantCollectionExists(ctx context.Context, name string) (bool, error)
	// CountTenantDocuments counts the documents of the collection name,
	// metadata document included; a missing collection counts 0.
	CountTenantDocuments(ctx context.Context, name string) (int64, error)
	// RenameTenantCollection renames the collection from to to, keeping its
	// documents. It gives ErrNotFound if from does not exist, ErrConflict
	// if to exists, and an error matching errors.ErrUnsupported if the
	// server or deployment refuses renames (the Manager then copies the
	// documents with CopyTenantDocuments).
	RenameTenantCollection(ctx context.Context, from, to string) error
	// DropTenantCollection removes the collection name and its documents.
	// Dropping a missing collection succeeds.
	DropTenantCollection(ctx context.Context, name string) error
	// CopyTenantDocuments copies every document of the collection from,
	// metadata document included, into the collection to, creating it if
	// needed. It streams in batches, so its memory does not grow with the
	// number of documents, and skips documents already in to (same _id),
	// so that an interrupted copy can run again. It calls progress, if not
	// nil, after each batch with the number of documents read so far, and
	// returns the number of documents read.
	CopyTenantDocuments(ctx context.Context, from, to string, progress func(read int64)) (int64, error)
}

// DocumentStore reads and writes the documents of a tenant collection.
// Store's rules on concurrency, contexts and errors apply.
type DocumentStore interface {
	// AddTenantDocument inserts doc into the collection, creating the
	// collection if it does not exist, as MongoDB does. It gives
	// ErrConflict if the collection has a document with doc.ID.
	AddTenantDocument(ctx context.Context, collection string, doc *Document) error
	// TenantDocument returns the document id of the collection, or
	// ErrNotFound (also when the collection does not exist).
	TenantDocument(ctx context.Context, collection, id string) (*Document, error)
	// TenantDocuments returns up to limit documents of the collection in
	// id order, starting after the id after ("" for the first). Only
	// documents whose id is an ObjectID are listed, and not the metadata
	// document.
	TenantDocuments(ctx context.Context, collection, after string, limit int) ([]*Document, error)
	// DeleteTenantDocument removes the document id of the collection, or
	// gives ErrNotFound.
	DeleteTenantDocument(ctx context.Context, collection, id string) error
}

// MemberStore keeps the memberships of accounts in organizations, each
// with its role. Every membership is claimed by an insert whose key is
// the organization and the account, so an account is a member of an
// organization at most once.
// Store's rules on concurrency, contexts and errors apply.
type MemberStore interface {
	// AddMembership inserts mb. It gives ErrConflict if the account is
	// already a member of the organization.
	AddMembership(ctx context.Context, mb *Membership) error
	// Membership returns the membership of admin in org, or ErrNotFound.
	// It is read on every authenticated request, so it must be one read
	// by key.
	Membership(ctx context.Context, org OrgID, admin AdminID) (*Membership, error)
	// SetMemberRole changes the role of admin in org, or gives ErrNotFound.
	SetMemberRole(ctx context.Context, org OrgID, admin AdminID, role Role) error
	// DeleteMembership removes admin from org, or gives ErrNotFound.
	DeleteMembership(ctx context.Context, org OrgID, admin AdminID) error
	// OrgMembers returns up to limit memberships of org in the order of
	// their admin ids, starting after the id after ("" for the first).
	OrgMembers(ctx context.Context, org OrgID, after AdminID, limit int) ([]*Membership, error)
	// AdminMemberships returns every membership of admin, oldest first
	// (by JoinedAt, then organization id).
	AdminMemberships(ctx context.Context, admin AdminID) ([]*Membership, error)
}

// InvitationStore keeps the pending invitations to join organizations.
// Store's rules on concurrency, contexts and errors apply.
type InvitationStore interface {
	// CreateInvitation inserts inv. It gives ErrConflict if its id is
	// taken or org already has an invitation for the same lower-cased
	// email: the store decides that uniqueness, by an insert.
	CreateInvitation(ctx context.Context, inv *Invitation) error
	// Invitation returns the invitation id, or ErrNotFound.
	Invitation(ctx context.Context, id string) (*Invitation, error)
	// OrgInvitations returns every invitation of org, expired ones
	// included, oldest first.
	OrgInvitations(ctx context.Context, org OrgID) ([]*Invitation, error)
	// DeleteInvitation removes the invitation id, or gives ErrNotFound.
	DeleteInvitation(ctx context.Context, id string) error
	// DeleteExpiredInvitations removes the invitations that expired
	// before before, and returns how many it removed.
	DeleteExpiredInvitations(ctx context.Context, before time.Time) (int64, error)
}

// OrgID identifies an organization: 24 lower-case hex digits, the text form
// of a MongoDB ObjectID.
type OrgID string

// OrgState is where an organization is in its lifecycle.
type OrgState string

// Organization states. Only an active organization is visible to OrgByName;
// the others mark an operation in progress, which Manager methods refuse to
// start another operation over.
const (
	OrgCreating OrgState = "creating"
	OrgActive   OrgState = "active"
	OrgRenaming OrgState = "renaming"
	OrgDeleting OrgState = "deleting"
)

// Org is an organization record.
type Org struct {
	ID OrgID
	// Name is the display name as the admin typed it (trimmed).
	Name string
	// Identifier is derived from Name by Identifier and is unique.
	Identifier string
	// TenantCollection is the collection holding the org's data.
	TenantCollection string
	AdminID          AdminID
	// AdminEmail is a copy of the admin's email, so that reading an org
	// takes one database round trip.
	AdminEmail string
	State      OrgState
	// PendingName, PendingIdentifier and PendingCollection are the target
	// of a rename in progress (State == OrgRenaming); empty otherwise.
	PendingName       string
	PendingIdentifier string
	PendingCollection string
	// PendingCopy says the rename in progress copies the documents
	// (CopyTenantDocuments) because the store refused to rename the
	// collection; such a rename is only ever completed, never undone.
	PendingCopy bool
	CreatedAt   time.Time
	ModifiedAt  time.Time
	// Version counts updates; Store.UpdateOrg uses it to refuse stale writes.
	Version int64
}

// AdminID identifies an admin account: 24 lower-case hex digits, the text
// form of a MongoDB ObjectID.
type AdminID string

// Admin is an organization's admin account.
type Admin struct {
	ID AdminID
	// Email is lower-cased and unique.
	Email string
	// PasswordHash is the bcrypt hash of the password.
	PasswordHash []byte
	OrgID        OrgID
	CreatedAt    time.Time
	// FailedLogins counts failed logins in a row; LastFailedLogin is the
	// last one. A successful login resets them.
	FailedLogins    int
	LastFailedLogin time.Time
	// TokenGeneration is written into every token issued; a password
	// change increments it, so that earlier tokens are rejected.
	TokenGeneration int64
}

// Role is what a member may do in an organization; see Permission.
type Role string

// Roles. The creator of an organization is its owner and its primary
// owner (Org.AdminID).
const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return r == RoleOwner || r == RoleAdmin || r == RoleMember }

// Membership is an account's place in an organization.
type Membership struct {
	OrgID   OrgID
	AdminID AdminID
	// Email is a copy of the account's email, so that a page of members
	// takes one read.
	Email    string
	Role     Role
	JoinedAt time.Time
}

// Invitation is a pending invitation of an email address to join an
// organization with a role.
type Invitation struct {
	// ID is 24 lower-case hex digits; the invitation's token starts with it.
	ID    string
	OrgID OrgID
	// Email is lower-cased.
	Email string
	Role  Role
	// TokenHash is the SHA-256 of the token's secret part: the token
	// itself is given out once and never stored.
	TokenHash []byte
	InvitedBy AdminID
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Document is one document of an organization's tenant data.
type Document struct {
	// ID is assigned on insert: 24 lower-case hex digits, the text form of
	// the document's ObjectID.
	ID string
	// Data holds the document's fields. Values are nil, bool, string,
	// int64, float64, time.Time, []any and map[string]any (other integer
	// types are accepted on insert and read back as int64 or int32). The
	// order of the fields is not kept.
	Data map[string]any
}

// Operation is an entry of the journal of operations in flight: an
// organization that a create, rename or delete is changing. The entry is
// written, under the organization's lock, before the operation's first
// step and removed after its last, so that recovery finds every
// unfinished operation by reading the journal alone.
type Operation struct {
	OrgID OrgID
	// Kind is one of the Op constants.
	Kind string
	// AdminID is the account a member operation is about: the one
	// joining, leaving, or becoming primary owner.
	AdminID AdminID
	// Invitation is the id of the invitation an OpAccept accepts.
	Invitation string
	// Names are the identifiers the operation may reserve: recovery
	// releases those the organization does not use once it is settled.
	Names   []string
	Started time.Time
	// Event is the event the operation records once it has taken
	// effect, with its id fixed before the first step: recovery records
	// it (once: AppendEvent is idempotent by id) for an operation it
	// completes, and never for one it rolls back.
	Event *Event
}

// Kinds of Operation.
const (
	OpCreate = "create"
	OpRename = "rename"
	OpDelete = "delete"
	// OpAccept adds a member (and, for a new email, its account) from an
	// invitation; the invitation's removal acknowledges it.
	OpAccept = "accept"
	// OpRemoveMember removes a member, and its account if it belongs
	// nowhere else.
	OpRemoveMember = "remove_member"
	// OpTransfer makes a member the primary owner.
	OpTransfer = "transfer"
	// OpInvite, OpChangeRole and OpRevoke are one write each: their
	// entry holds their event until it is recorded.
	OpInvite     = "invite"
	OpChangeRole = "change_role"
	OpRevoke     = "revoke_invitation"
)

// Reservation is a reserved identifier.
type Reservation struct {
	Identifier string
	OrgID      OrgID
	ReservedAt time.Time
}

// Pinger is implemented by stores that can check their database answers.
type Pinger interface {
	Ping(ctx context.Context) error
}
