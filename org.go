package tenancy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// OrgID identifies an organization: 24 lower-case hex digits, the text form
// of a MongoDB ObjectID.
type OrgID string

// OrgState is where an organization is in its lifecycle.
type OrgState string

// Organization states. Only an active organization is visible to GetOrg;
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

// Naming limits.
const (
	// MaxNameLength is the longest organization name, in characters.
	MaxNameLength = 100
	// MaxIdentifierLength is the longest identifier, in bytes. It keeps the
	// tenant collection name (at most 7+MaxIdentifierLength bytes) and the
	// full namespace "<database>.<collection>" within MongoDB's 255 bytes
	// for any valid database name (at most 63 bytes).
	MaxIdentifierLength = 120
	// TenantCollectionPrefix starts every tenant collection name.
	TenantCollectionPrefix = "tenant_"
)

// Identifier derives an organization's identifier from its name. The
// identifier is what makes two names the same organization: case, width,
// accents in composed or decomposed form, spaces and punctuation do not
// count. Letters and digits of any script are kept (case-folded, NFKC
// normalized), every run of other characters becomes one "-", and
// invisible format characters and every default-ignorable code point are
// dropped (the Hangul fillers, drawn as blanks, separate words):
//
//	"Tech Innovations Corp 2.0" -> "tech-innovations-corp-2-0"
//
// Look-alike letters count as the letters they are drawn like where that
// can make a name pass for another: in a name with Latin letters, the
// Cyrillic, Greek and Armenian letters drawn like Latin ones are those
// Latin letters ("Асме Corporation" in Cyrillic and "Acme Corporation"
// are one name). A name without Latin letters keeps its script.
//
// It returns a *ValidationError for the field "organization_name" if the
// name is empty, too long, not UTF-8, has control characters, has no letter
// or digit, or yields an identifier longer than MaxIdentifierLength.
func Identifier(name string) (string, error) {
	_, id, msg := identifier(name)
	if msg != "" {
		return "", &ValidationError{Fields: []FieldError{{Field: "organization_name", Message: msg}}}
	}
	return id, nil
}

// TenantCollection returns the tenant collection name of an identifier:
// "tenant_" followed by the identifier with "-" as "_". Identifiers never
// contain "_", so distinct identifiers give distinct collections.
func TenantCollection(identifier string) string {
	return TenantCollectionPrefix + strings.ReplaceAll(identifier, "-", "_")
}

// identifier returns the trimmed name and its identifier, or a message
// saying why the name is refused.
func identifier(name string) (trimmed, id, msg string) {
	if !utf8.ValidString(name) {
		return "", "", "must be valid UTF-8"
	}
	trimmed = strings.TrimSpace(name)
	if trimmed == "" {
		return "", "", "is required"
	}
	if utf8.RuneCountInString(trimmed) > MaxNameLength {
		return "", "", fmt.Sprintf("must be at most %d characters", MaxNameLength)
	}
	for _, r := range trimmed {
		switch {
		case unicode.IsControl(r):
			return "", "", "must not contain control characters"
		case unicode.Is(unicode.Bidi_Control, r):
			// Overrides can make a name display as another one.
			return "", "", "must not contain bidirectional control characters"
		}
	}
	id, alnum := deriveIdentifier(trimmed, false)
	if !alnum {
		return "", "", "must contain at least one letter or digit"
	}
	if len(id) > MaxIdentifierLength {
		return "", "", fmt.Sprintf("is too long: its identifier %q is %d bytes, the limit is %d", truncate(id, 24), len(id), MaxIdentifierLength)
	}
	return trimmed, id, ""
}

// deriveIdentifier derives the identifier of a trimmed, checked name and
// says whether it has a letter or digit. With earlier set, it follows the
// rules before default-ignorable code points and look-alike letters
// counted (only format characters were dropped): see earlierIdentifier.
func deriveIdentifier(trimmed string, earlier bool) (id string, alnum bool) {
	s := trimmed
	if !earlier {
		s = dropIgnorables(s)
	}
	folded := foldName(s)
	if !earlier {
		folded = latinLookAlikes(folded)
	}
	var b strings.Builder
	b.Grow(len(folded))
	sep := false
	for _, r := range folded {
		switch {
		case !earlier && isHangulFiller(r):
			sep = true
		case unicode.Is(unicode.Cf, r) || !earlier && unicode.Is(defaultIgnorable, r):
			// Zero-width joiners, soft hyphens, variation selectors and
			// the like are invisible: names differing only by them are
			// the same name.
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.In(r, unicode.Mn, unicode.Mc):
			if sep && b.Len() > 0 {
				b.WriteByte('-')
			}
			sep = false
			alnum = alnum || unicode.IsLetter(r) || unicode.IsDigit(r)
			b.WriteRune(r)
		default:
			sep = true
		}
	}
	return b.String(), alnum
}

// earlierIdentifier returns the identifier name had under the rules before
// default-ignorable code points and look-alike letters counted, if that
// differs from id (its identifier now), or "". An organization created
// then is stored under that identifier: lookups by name fall back to it,
// and creates and renames refuse a name whose earlier identifier is
// taken, so that such an organization stays reachable by its name and no
// new one takes its name. Only names with such code points or letters
// differ; no ASCII name does.
func earlierIdentifier(name, id string) string {
	trimmed := strings.TrimSpace(name)
	for i := 0; i < len(trimmed); i++ {
		if trimmed[i] >= utf8.RuneSelf {
			if old, _ := deriveIdentifier(trimmed, true); old != id {
				return old
			}
			return ""
		}
	}
	return ""
}

// foldName case-folds and NFKC-normalizes s, with a fast path for ASCII.
func foldName(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	// Normalize on both sides of the fold: folding can produce sequences
	// that compose differently. The final lower-casing settles the scripts
	// (Cherokee) whose case folding maps to upper case, so that an
	// identifier derived again from itself stays the same.
	return strings.ToLower(norm.NFKC.String(cases.Fold().String(norm.NFKC.String(s))))
}

// truncate shortens s to at most n runes for an error message.
func truncate(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j] + "…"
		}
		i++
	}
	return s
}

// CreateOrgParams are the inputs of CreateOrg.
type CreateOrgParams struct {
	// Name is the organization name; see Identifier for the rules.
	Name string
	// AdminEmail is the admin's email, stored lower-cased.
	AdminEmail string
	// AdminPassword is the admin's password, 8 to 72 bytes.
	AdminPassword string
}

// CreateOrg creates an organization, its admin and its tenant collection.
// It returns a *ValidationError (ErrInvalid) for bad input and ErrConflict
// if the name's identifier or the email is taken. On any failure the steps
// already taken are undone.
func (m *Manager) CreateOrg(ctx context.Context, p CreateOrgParams) (_ *Org, err error) {
	var verr ValidationError
	name, id, msg := identifier(p.Name)
	verr.add("organization_name", msg)
	email, msg := normalizeEmail(p.AdminEmail)
	verr.add("email", msg)
	verr.add("password", checkPassword(p.AdminPassword))
	if err := verr.err(); err != nil {
		return nil, err
	}
	// A name an active organization holds is public (GET /org/get): its
	// conflict needs no bcrypt work, which a burst of sign-ups would
	// otherwise queue for. The reservation below decides every other case.
	held, err := m.store.OrgByIdentifier(ctx, id)
	switch {
	case err == nil && held.State == OrgActive:
		return nil, nameTaken(name, ErrConflict)
	case err != nil && !errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("look up organization %q: %w", name, err)
	}
	if err := m.earlierNameTaken(ctx, p.Name, id, ""); err != nil {
		return nil, err
	}
	hash, err := m.hashPassword(ctx, p.AdminPassword)
	if err != nil {
		return nil, err
	}

	now := m.now().UTC()
	org := &Org{
		ID:               OrgID(newObjectID(now)),
		Name:             name,
		Identifier:       id,
		TenantCollection: TenantCollection(id),
		AdminID:          AdminID(newObjectID(now)),
		AdminEmail:       email,
		State:            OrgCreating,
		CreatedAt:        now,
		ModifiedAt:       now,
	}
	admin := &Admin{ID: org.AdminID, Email: email, PasswordHash: hash, OrgID: org.ID, CreatedAt: now}

	// The new org's lock keeps recovery off it while it is being created.
	ctx, unlock, err := m.lockOrg(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	defer func() { err = m.leaseError(ctx, err) }()

	// Each undo is registered before its step runs, since a step can take
	// effect and still report an error (a lost reply, a canceled context),
	// and each undo is safe to run whether or not its step took effect.
	var undo undoList
	fail := func(err error) (*Org, error) {
		m.rollback(ctx, "create", org.ID, undo)
		return nil, err
	}

	undo.add(func(ctx context.Context) error { return m.store.DeleteOperation(ctx, org.ID) })
	if err := m.beginOperation(ctx, org.ID, OpCreate, id); err != nil {
		return fail(err)
	}
	undo.add(func(ctx context.Context) error { return m.store.ReleaseName(ctx, id, org.ID) })
	if err := m.store.ReserveName(ctx, id, org.ID, now); err != nil {
		if errors.Is(err, ErrConflict) {
			return fail(nameTaken(name, err))
		}
		return fail(fmt.Errorf("reserve name: %w", err))
	}

	undo.add(func(ctx context.Context) error { return ignoreNotFound(m.store.DeleteOrg(ctx, org.ID)) })
	if err := m.store.CreateOrg(ctx, org); err != nil {
		return fail(fmt.Errorf("create org record: %w", err))
	}

	ownCollection := true
	undo.add(func(ctx context.Context) error {
		if !ownCollection {
			return nil
		}
		return m.store.DropTenantCollection(ctx, org.TenantCollection)
	})
	if err := m.store.CreateTenantCollection(ctx, org.TenantCollection, org.ID, now); err != nil {
		if errors.Is(err, ErrConflict) {
			// Not ours: a collection of that name was there before.
			ownCollection = false
			m.log.ErrorContext(ctx, "tenant collection exists without an organization holding its name",
				"collection", org.TenantCollection, "identifier", id)
			return fail(collectionTaken(org.TenantCollection, err))
		}
		return fail(fmt.Errorf("create tenant collection: %w", err))
	}

	undo.add(func(ctx context.Context) error { return ignoreNotFound(m.store.DeleteAdmin(ctx, admin.ID)) })
	if err := m.store.CreateAdmin(ctx, admin); err != nil {
		if errors.Is(err, ErrConflict) {
			return fail(&ConflictError{Field: "email", Message: "is already registered to an organization", Err: err})
		}
		return fail(fmt.Errorf("create admin: %w", err))
	}

	org.State = OrgActive
	if err := m.store.UpdateOrg(ctx, org); err != nil {
		return fail(fmt.Errorf("activate org: %w", err))
	}
	m.endOperation(ctx, org.ID)
	m.log.InfoContext(ctx, "organization created", "org_id", org.ID, "identifier", id)
	return org, nil
}

// GetOrg returns the active organization whose name has the same identifier
// as name. It returns a *ValidationError if name cannot be an organization
// name and ErrNotFound if there is no such organization. It takes one
// database round trip (two to not find a name whose earlier identifier
// differs; see earlierIdentifier).
func (m *Manager) GetOrg(ctx context.Context, name string) (*Org, error) {
	_, id, msg := identifier(name)
	if msg != "" {
		return nil, &ValidationError{Fields: []FieldError{{Field: "organization_name", Message: msg}}}
	}
	org, err := m.orgByName(ctx, name, id)
	if err != nil {
		return nil, fmt.Errorf("organization %q: %w", name, err)
	}
	if org = m.settledView(ctx, org); !org.visible() {
		return nil, fmt.Errorf("organization %q: %w", name, ErrNotFound)
	}
	return org, nil
}

// orgByName returns the org record of name, whose identifier is id:
// the one holding id, or else one created under the name's earlier
// identifier (see earlierIdentifier).
func (m *Manager) orgByName(ctx context.Context, name, id string) (*Org, error) {
	org, err := m.store.OrgByIdentifier(ctx, id)
	if errors.Is(err, ErrNotFound) {
		if old := earlierIdentifier(name, id); old != "" {
			return m.store.OrgByIdentifier(ctx, old)
		}
	}
	return org, err
}

// earlierNameTaken returns a conflict if an organization other than self
// holds name's earlier identifier (see earlierIdentifier).
func (m *Manager) earlierNameTaken(ctx context.Context, name, id string, self OrgID) error {
	old := earlierIdentifier(name, id)
	if old == "" {
		return nil
	}
	org, err := m.store.OrgByIdentifier(ctx, old)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("look up organization %q: %w", name, err)
	case org.ID == self:
		return nil
	}
	return nameTaken(strings.TrimSpace(name), ErrConflict)
}

// GetOrgByID returns the active organization with id, or ErrNotFound.
func (m *Manager) GetOrgByID(ctx context.Context, id OrgID) (*Org, error) {
	org, err := m.store.OrgByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("organization %s: %w", id, err)
	}
	if org = m.settledView(ctx, org); !org.visible() {
		return nil, fmt.Errorf("organization %s: %w", id, ErrNotFound)
	}
	return org, nil
}

// settledView returns org as readers should see it. An org found
// renaming whose operation's lease ran out (its process died) is settled
// first, so that it answers with the collection that holds its documents;
// one whose operation is live, or that cannot be settled now, is returned
// as read: the rename is not acknowledged yet.
func (m *Manager) settledView(ctx context.Context, org *Org) *Org {
	if org.State != OrgRenaming {
		return org
	}
	var rep RecoveryReport
	if err := m.lockedRecoverOrg(ctx, org.ID, &rep); err != nil {
		return org
	}
	now, err := m.store.OrgByID(ctx, org.ID)
	if err != nil {
		return &Org{ID: org.ID, State: OrgDeleting} // gone meanwhile: not visible
	}
	return now
}

// visible reports whether the org exists for readers: it has been created
// and is not being deleted.
func (o *Org) visible() bool { return o.State == OrgActive || o.State == OrgRenaming }

// DeleteOrgNamed deletes the organization named name on behalf of an admin
// of the organization id: it is DeleteOrg after checking that name is id's
// own name. It returns ErrForbidden if name is another organization's and
// ErrNotFound if no organization has it. Unlike GetOrg it finds id's
// organization while a deletion of it is unfinished, so that a failed
// delete can be retried.
func (m *Manager) DeleteOrgNamed(ctx context.Context, id OrgID, name string) error {
	_, ident, msg := identifier(name)
	if msg != "" {
		return &ValidationError{Fields: []FieldError{{Field: "organization_name", Message: msg}}}
	}
	own, err := m.store.OrgByID(ctx, id)
	switch {
	case err == nil && (own.Identifier == ident || own.Identifier == earlierIdentifier(name, ident)) && own.State != OrgCreating:
		return m.DeleteOrg(ctx, id)
	case err != nil && !errors.Is(err, ErrNotFound):
		return fmt.Errorf("organization %s: %w", id, err)
	}
	other, err := m.orgByName(ctx, name, ident)
	if err != nil {
		return fmt.Errorf("organization %q: %w", name, err)
	}
	if !other.visible() {
		return fmt.Errorf("organization %q: %w", name, ErrNotFound)
	}
	return fmt.Errorf("organization %q belongs to another admin: %w", name, ErrForbidden)
}

// DeleteOrg deletes the organization id with its admin, its tenant
// collection and all of its data. It returns ErrNotFound if there is no
// such organization and ErrConflict if another operation on it is in
// progress.
func (m *Manager) DeleteOrg(ctx context.Context, id OrgID) (err error) {
	ctx, unlock, err := m.lockOrg(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	defer func() { err = m.leaseError(ctx, err) }()
	org, err := m.store.OrgByID(ctx, id)
	if err != nil {
		return fmt.Errorf("organization %s: %w", id, err)
	}
	return m.deleteLocked(ctx, org)
}

// deleteLocked runs or finishes the deletion of org, whose lock the caller
// holds.
func (m *Manager) deleteLocked(ctx context.Context, org *Org) error {
	id := org.ID
	if org.State == OrgRenaming {
		err := m.settleRename(ctx, org)
		switch {
		case errors.Is(err, errCollectionsLost):
			// Nothing to move: delete what is left, and free the
			// rename's target name too.
			if err := m.store.ReleaseName(ctx, org.PendingIdentifier, id); err != nil {
				return fmt.Errorf("release name of organization %s: %w", id, err)
			}
		case err != nil:
			return err
		}
	}
	switch org.State {
	case OrgActive, OrgRenaming:
		if err := m.beginOperation(ctx, id, OpDelete, org.Identifier); err != nil {
			return err
		}
		org.State = OrgDeleting
		org.ModifiedAt = m.now().UTC()
		if err := m.store.UpdateOrg(ctx, org); err != nil {
			// Recovery finds the entry and, if the deletion was
			// recorded after all, completes it.
			return fmt.Errorf("record deletion of organization %s: %w", id, err)
		}
	case OrgDeleting:
		// A deletion was interrupted: finish it.
	case OrgCreating:
		return fmt.Errorf("organization %s: %w", id, ErrNotFound)
	default:
		return fmt.Errorf("organization %s is %s: %w", id, org.State, ErrConflict)
	}
	// Admin first, so that no new token is issued for a vanishing org;
	// the name only once the data is gone.
	if err := ignoreNotFound(m.store.DeleteAdmin(ctx, org.AdminID)); err != nil {
		return fmt.Errorf("delete admin of organization %s: %w", id, err)
	}
	if err := m.dropOwnCollection(ctx, org, true); err != nil {
		return fmt.Errorf("drop tenant collection %s: %w", org.TenantCollection, err)
	}
	// The name is released before the record goes, so that a retry
	// still finds the record and finishes the job.
	if err := m.store.ReleaseName(ctx, org.Identifier, id); err != nil {
		return fmt.Errorf("release name of organization %s: %w", id, err)
	}
	if err := ignoreNotFound(m.store.DeleteOrg(ctx, id)); err != nil {
		return fmt.Errorf("delete organization %s: %w", id, err)
	}
	m.endOperation(ctx, id)
	m.log.InfoContext(ctx, "organization deleted", "org_id", id, "identifier", org.Identifier)
	return nil
}

// rollbackCreate undoes an unfinished creation. It drops the tenant
// collection only if this organization created it.
func (m *Manager) rollbackCreate(ctx context.Context, org *Org) error {
	// Claim the record first: a create that was only stalled, not dead,
	// then fails its version-checked activation instead of succeeding
	// over a half-removed org.
	org.ModifiedAt = m.now().UTC()
	if err := m.store.UpdateOrg(ctx, org); err != nil {
		return fmt.Errorf("roll back creation of %s: %w", org.ID, err)
	}
	if err := ignoreNotFound(m.store.DeleteAdmin(ctx, org.AdminID)); err != nil {
		return fmt.Errorf("roll back creation of %s: %w", org.ID, err)
	}
	if err := m.dropOwnCollection(ctx, org, false); err != nil {
		return fmt.Errorf("roll back creation of %s: %w", org.ID, err)
	}
	if err := m.store.ReleaseName(ctx, org.Identifier, org.ID); err != nil {
		return fmt.Errorf("roll back creation of %s: %w", org.ID, err)
	}
	return ignoreNotFound(m.store.DeleteOrg(ctx, org.ID))
}

// dropOwnCollection drops org's tenant collection unless its metadata
// says another organization owns it: a collection that was there before
// (another application's) or one a newer organization of the same name
// created after this one's lease ran out. A collection without the stamp
// is dropped with unstamped (an active org's collection may predate
// stamps), or if it is empty: an unfinished create that finds one with
// documents but no stamp did not make it, but one whose process died
// between creating its collection and stamping it left it empty.
func (m *Manager) dropOwnCollection(ctx context.Context, org *Org, unstamped bool) error {
	owner, err := m.store.TenantCollectionOwner(ctx, org.TenantCollection)
	switch {
	case errors.Is(err, ErrNotFound) && unstamped:
	case errors.Is(err, ErrNotFound):
		n, err := m.store.CountTenantDocuments(ctx, org.TenantCollection)
		if err != nil || n > 0 {
			return err
		}
	case err != nil:
		return err
	case owner != org.ID:
		m.log.ErrorContext(ctx, "tenant collection belongs to another organization; left in place",
			"org_id", org.ID, "collection", org.TenantCollection, "owner", owner)
		return nil
	}
	return m.store.DropTenantCollection(ctx, org.TenantCollection)
}

func nameTaken(name string, err error) error {
	return &ConflictError{Field: "organization_name", Message: fmt.Sprintf("%q is already taken (names differing only in case, spaces, punctuation, invisible characters or look-alike letters are the same)", name), Err: err}
}

// collectionTaken reports a name whose tenant collection exists in the
// database without belonging to an organization (left by another
// application, or restored from a backup): the name cannot be used until
// an operator removes or renames that collection.
func collectionTaken(collection string, err error) error {
	return &ConflictError{Field: "organization_name", Message: fmt.Sprintf("cannot be used: its tenant collection %s already exists in the database", collection), Err: err}
}

func ignoreNotFound(err error) error {
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// newObjectID returns a new ObjectID in hex: the time in seconds, then 8
// random bytes (where MongoDB's generator puts a per-process value and a
// counter), so that ids still sort by creation to the second but nothing
// can be derived from one about another: an admin's id from its
// organization's, or the next organization's from this one's.
func newObjectID(now time.Time) string {
	var b [12]byte
	s := uint32(now.Unix())
	b[0], b[1], b[2], b[3] = byte(s>>24), byte(s>>16), byte(s>>8), byte(s)
	_, _ = rand.Read(b[4:]) // crypto/rand.Read never fails; it aborts the program instead
	return hex.EncodeToString(b[:])
}

// newDocumentID returns a new ObjectID in hex for a tenant document: the
// time in seconds, 5 random bytes drawn once per process and a counter, as
// MongoDB's drivers make them, so that the documents one process inserts
// list in the order it inserted them. A document id names nothing outside
// its own tenant, which only that tenant's tokens reach.
func newDocumentID(now time.Time) string {
	var b [12]byte
	s := uint32(now.Unix())
	b[0], b[1], b[2], b[3] = byte(s>>24), byte(s>>16), byte(s>>8), byte(s)
	copy(b[4:9], processUnique[:])
	c := idCounter.Add(1)
	b[9], b[10], b[11] = byte(c>>16), byte(c>>8), byte(c)
	return hex.EncodeToString(b[:])
}

var (
	processUnique [5]byte
	idCounter     atomic.Uint32
)

func init() {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails; it aborts the program instead
	copy(processUnique[:], b[:5])
	idCounter.Store(uint32(b[5])<<16 | uint32(b[6])<<8 | uint32(b[7]))
}
