package tenancy

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Password limits, in bytes. bcrypt ignores bytes past 72, so longer
// passwords are refused instead of silently truncated.
const (
	MinPasswordLength = 8
	MaxPasswordLength = 72
	// MaxEmailLength is the longest email address accepted, in bytes (RFC 5321).
	MaxEmailLength = 254
)

// checkPassword returns why password is refused, or "".
func checkPassword(password string) string {
	switch {
	case password == "":
		return "is required"
	case len(password) < MinPasswordLength:
		return fmt.Sprintf("must be at least %d bytes", MinPasswordLength)
	case len(password) > MaxPasswordLength:
		return fmt.Sprintf("must be at most %d bytes", MaxPasswordLength)
	}
	return ""
}

// CheckPassword returns a *ValidationError for the field "password" if
// password is outside MinPasswordLength..MaxPasswordLength bytes.
func CheckPassword(password string) error {
	if msg := checkPassword(password); msg != "" {
		return &ValidationError{Fields: []FieldError{{Field: "password", Message: msg}}}
	}
	return nil
}

// NormalizeEmail returns email trimmed and lower-cased, the form admins are
// stored and looked up by. It returns a *ValidationError for the field
// "email" if email is not a plain address such as "admin@example.com".
func NormalizeEmail(email string) (string, error) {
	e, msg := normalizeEmail(email)
	if msg != "" {
		return "", &ValidationError{Fields: []FieldError{{Field: "email", Message: msg}}}
	}
	return e, nil
}

func normalizeEmail(email string) (string, string) {
	if !utf8.ValidString(email) {
		return "", "must be valid UTF-8"
	}
	e := strings.ToLower(strings.TrimSpace(email))
	if e == "" {
		return "", "is required"
	}
	if strings.ContainsFunc(e, func(r rune) bool { return unicode.Is(defaultIgnorable, r) || unicode.IsControl(r) }) {
		// Two addresses differing by these look the same in a list of
		// members, and no mail system needs them.
		return "", "must not contain invisible or control characters"
	}
	if len(e) > MaxEmailLength {
		return "", fmt.Sprintf("must be at most %d bytes", MaxEmailLength)
	}
	// ParseAddress accepts display names and comments ("Bob <b@x>");
	// requiring the parsed address to equal the input leaves a bare address.
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return "", "must be an email address like admin@example.com"
	}
	// A deliverable address has a domain with a dot, not an IP literal.
	at := strings.LastIndexByte(e, '@')
	if domain := e[at+1:]; at <= 0 || !strings.Contains(strings.Trim(domain, "."), ".") || strings.ContainsAny(domain, "[]") {
		return "", "must be an email address like admin@example.com"
	}
	return e, ""
}

// errBadCredentials is the one answer to an unknown email or a wrong
// password, so that the two cannot be told apart.
var errBadCredentials = fmt.Errorf("incorrect email or password: %w", ErrUnauthenticated)

// backoff returns how long an account with failures failed logins in a
// row, the last at last, must wait before its next try: nothing below the
// threshold, then the base doubling with each further failure, up to the
// maximum.
func (m *Manager) backoff(failures int, last time.Time) time.Duration {
	if wait := last.Add(m.backoffFor(failures)).Sub(m.now()); wait > 0 {
		return wait
	}
	return 0
}

// backoffFor is the wait after failures failed logins in a row.
func (m *Manager) backoffFor(failures int) time.Duration {
	if m.backoffAfter <= 0 || failures < m.backoffAfter {
		return 0
	}
	d := m.backoffBase
	for range failures - m.backoffAfter {
		if d >= m.backoffMax/2 {
			return m.backoffMax
		}
		d *= 2
	}
	return min(d, m.backoffMax)
}

// FailureMemory is how long failed logins count: an address whose last
// failure is older starts afresh.
const FailureMemory = 24 * time.Hour

// admit decides whether a login attempt of email, whose failure count
// and last failure were read as failures and last, may check its
// password. Near or past the back-off threshold it counts the attempt as
// a failure before the check, by a compare-and-set on the last failure,
// so that parallel tries cannot all pass through one back-off window;
// claimed reports that it did. Old failures are forgotten first.
func (m *Manager) admit(ctx context.Context, email string, known bool, failures int, last time.Time) (claimed bool, err error) {
	if failures > 0 && m.now().Sub(last) > FailureMemory {
		if err := m.loginFailures.ResetLoginFailures(ctx, email); err != nil {
			return false, fmt.Errorf("forget old login failures: %w", err)
		}
		failures, last = 0, time.Time{}
	}
	if wait := m.backoff(failures, last); wait > 0 {
		return false, &RetryError{Kind: ErrThrottled, After: wait}
	}
	if m.backoffAfter <= 0 || failures < m.backoffAfter-1 {
		return false, nil
	}
	ok, err := m.loginFailures.ClaimLoginAttempt(ctx, email, known, last, m.now().UTC())
	if err != nil {
		return false, fmt.Errorf("count login attempt: %w", err)
	}
	if !ok {
		// Another try took this window.
		return false, &RetryError{Kind: ErrThrottled, After: max(m.backoffFor(failures+1), time.Second)}
	}
	return true, nil
}

// AuthenticatePassword returns the admin whose email and password these are. It
// returns a *ValidationError for a malformed email or a password outside
// 8..72 bytes, and ErrUnauthenticated, identically and after the same bcrypt
// work, for an unknown email and for a wrong password. Failed attempts are
// counted per email address in the database, known or not, so they count
// across server processes: after WithLoginBackoff's threshold (10) in a
// row, the address must wait a back-off that doubles with each further
// failure, and tries before it ends get a *RetryError of ErrThrottled
// without a password check. A success resets the count. With the client's
// address in ctx (ContextWithClientAddr; httpapi sets it), that back-off
// applies per email and client network instead, so that nobody can lock
// an owner out from another network, and the email's own count puts it
// under the back-off from every network only past WithAccountBackoff's
// threshold (100); this costs one read more. The bcrypt work
// runs in a bounded pool (WithHashConcurrency); a try that waits too long
// for it gets a *RetryError of ErrOverloaded.
//
// A successful check of an account without failures takes two database
// round trips (the admin, then its organization, which must not be being
// deleted) and one bcrypt comparison; a failure takes the admin and one
// write (and, for an existing account, its admin.login_failed event,
// written aside), and an unknown email one read more. Login and LoginTo
// also read the membership and record the admin.logged_in event.
func (m *Manager) AuthenticatePassword(ctx context.Context, email, password string) (*Admin, error) {
	admin, _, err := m.authenticate(ctx, email, password)
	return admin, err
}

// authenticate is AuthenticatePassword, which also returns the admin's
// home organization (nil if its record is missing).
func (m *Manager) authenticate(ctx context.Context, email, password string) (*Admin, *Org, error) {
	var verr ValidationError
	e, msg := normalizeEmail(email)
	verr.add("email", msg)
	verr.add("password", checkPassword(password))
	if err := verr.err(); err != nil {
		return nil, nil, err
	}
	admin, err := m.admins.AdminByEmail(ctx, e)
	hash := m.dummyHash
	var failures int
	var last time.Time
	switch {
	case errors.Is(err, ErrNotFound):
		admin = nil
		if failures, last, err = m.loginFailures.LoginFailures(ctx, e); err != nil {
			return nil, nil, fmt.Errorf("look up login failures: %w", err)
		}
	case err != nil:
		return nil, nil, fmt.Errorf("look up admin: %w", err)
	default:
		hash, failures, last = admin.PasswordHash, admin.FailedLogins, admin.LastFailedLogin
	}
	ok, err := m.checkCounted(ctx, e, admin != nil, hash, failures, last, password)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		if admin != nil {
			// Recorded aside, so that a wrong password for an account
			// takes as long as any password for an unknown address.
			m.recordAside(ctx, m.newEvent(EventAdminLoginFailed, admin.OrgID, admin.ID, map[string]any{
				"admin_id": string(admin.ID), "email": admin.Email, "reason": "wrong_password",
			}))
		}
		return nil, nil, errBadCredentials
	}
	// An admin whose organization is being deleted (or was never
	// created) is gone for logins as for every reader. A missing record
	// is left to the caller's own lookup, as in AuthenticateToken.
	org, err := m.orgs.OrgByID(ctx, admin.OrgID)
	switch {
	case errors.Is(err, ErrNotFound):
		org = nil
	case err != nil:
		return nil, nil, fmt.Errorf("look up organization: %w", err)
	case !org.visible():
		return nil, nil, errBadCredentials
	}
	return admin, org, nil
}

// checkCounted checks password against hash under the failure counts of
// email (see admit): a wrong password, or any password of an address
// without an account (known false), counts as a failure; a right one
// clears the counts. failures and last are the account's own count. With
// a client address in ctx, the back-off of WithLoginBackoff applies per
// account and client network, and the account's own count puts the whole
// account under it only past WithAccountBackoff's threshold; without
// one, the account's count is the only one. It reports whether the
// password was right.
func (m *Manager) checkCounted(ctx context.Context, email string, known bool, hash []byte, failures int, last time.Time, password string) (bool, error) {
	netKey := networkKey(ctx, email)
	if netKey == "" {
		return m.checkUnder(ctx, email, known, known, hash, failures, last, password, nil)
	}
	if failures > 0 && m.now().Sub(last) > FailureMemory {
		if err := m.loginFailures.ResetLoginFailures(ctx, email); err != nil {
			return false, fmt.Errorf("forget old login failures: %w", err)
		}
		failures = 0
	}
	if m.accountAfter > 0 && failures >= m.accountAfter {
		if wait := last.Add(m.backoffFor(failures - m.accountAfter + m.backoffAfter)).Sub(m.now()); wait > 0 {
			return false, &RetryError{Kind: ErrThrottled, After: wait}
		}
	}
	netFailures, netLast, err := m.loginFailures.LoginFailures(ctx, netKey)
	if err != nil {
		return false, fmt.Errorf("look up login failures: %w", err)
	}
	account := func(match bool) {
		switch {
		case !known || !match:
			if err := m.loginFailures.RecordLoginFailure(context.WithoutCancel(ctx), email, known, m.now().UTC()); err != nil {
				m.log.ErrorContext(ctx, "record failed password check", "err", err)
			}
		case failures > 0:
			if err := m.loginFailures.ResetLoginFailures(ctx, email); err != nil {
				m.log.ErrorContext(ctx, "reset failed logins", "err", err)
			}
		}
	}
	// The network's count is kept apart from any account, as an
	// unknown address's is.
	return m.checkUnder(ctx, netKey, false, known, hash, netFailures, netLast, password, account)
}

// checkUnder checks password against hash under the failure count kept
// under key (see admit), and then calls also, if set, with the result.
// stored says whether key's count is kept on an admin account (email is
// an account's) rather than apart; canMatch whether the password can
// match at all (there is an account).
func (m *Manager) checkUnder(ctx context.Context, key string, stored, canMatch bool, hash []byte, failures int, last time.Time, password string, also func(match bool)) (bool, error) {
	claimed, err := m.admit(ctx, key, stored, failures, last)
	if err != nil {
		return false, err
	}
	match, err := m.compare(ctx, hash, password)
	if err != nil {
		return false, err
	}
	if also != nil {
		also(match)
	}
	if !canMatch || !match {
		if !claimed {
			if err := m.loginFailures.RecordLoginFailure(context.WithoutCancel(ctx), key, stored, m.now().UTC()); err != nil {
				m.log.ErrorContext(ctx, "record failed password check", "err", err)
			}
		}
		return false, nil
	}
	if failures > 0 || claimed {
		if err := m.loginFailures.ResetLoginFailures(ctx, key); err != nil {
			m.log.ErrorContext(ctx, "reset failed logins", "err", err)
		}
	}
	return true, nil
}

// Token is an issued access token.
type Token struct {
	AccessToken string
	// TokenType is always "bearer".
	TokenType string
	AdminID   AdminID
	OrgID     OrgID
	// Role is the admin's role in OrgID.
	Role      Role
	ExpiresAt time.Time
}

// Login authenticates an admin (see AuthenticatePassword) and issues a
// token scoped to the admin's home organization: the first it joined that
// it still belongs to. LoginTo names the organization.
func (m *Manager) Login(ctx context.Context, email, password string) (*Token, error) {
	return m.LoginTo(ctx, email, password, "")
}

// LoginTo is Login for the organization named orgName, of which the admin
// must be a member; "" means the home organization. A name that leads to
// no organization of the admin's gives ErrUnauthenticated, as a wrong
// password does, so that logins do not tell memberships apart.
func (m *Manager) LoginTo(ctx context.Context, email, password, orgName string) (_ *Token, err error) {
	ctx, end := m.trace(ctx, "login")
	defer func() { end(err); m.login(err) }()
	var org *Org
	if orgName != "" {
		var err error
		if org, err = m.OrgByName(ctx, orgName); errors.Is(err, ErrNotFound) {
			org = nil
		} else if err != nil {
			return nil, err
		}
	}
	admin, home, err := m.authenticate(ctx, email, password)
	if err != nil {
		return nil, err
	}
	if orgName == "" {
		org = home
	}
	if org == nil || !org.visible() {
		return nil, errBadCredentials
	}
	mb, err := m.membership(ctx, org, admin.ID)
	if errors.Is(err, ErrNotFound) {
		return nil, errBadCredentials
	}
	if err != nil {
		return nil, fmt.Errorf("look up membership: %w", err)
	}
	return m.issueLogin(ctx, admin, mb, "password")
}

// issueLogin issues admin's token for the membership mb and records its
// admin.logged_in event; method is how the admin logged in.
func (m *Manager) issueLogin(ctx context.Context, admin *Admin, mb *Membership, method string) (*Token, error) {
	tok, err := m.IssueToken(admin, mb)
	if err != nil {
		return nil, err
	}
	// A login is acknowledged with its event: one that cannot be
	// recorded fails (the database is failing too).
	if err := m.recordUnlocked(ctx, m.newEvent(EventAdminLoggedIn, mb.OrgID, admin.ID, map[string]any{
		"admin_id": string(admin.ID), "email": admin.Email, "role": string(mb.Role), "method": method,
	})); err != nil {
		return nil, err
	}
	return tok, nil
}

// ChangePassword sets a new password for the admin of claims, after
// checking the current one (failures count towards the account's
// back-off, as logins do). Every token issued before is rejected from then
// on by AuthenticateToken; the returned token replaces the caller's. It returns a
// *ValidationError for a new password outside 8..72 bytes (field
// "new_password") and ErrUnauthenticated for a wrong current password or
// a gone account.
func (m *Manager) ChangePassword(ctx context.Context, claims *Claims, current, next string) (*Token, error) {
	var verr ValidationError
	if msg := checkPassword(current); msg != "" {
		verr.add("current_password", msg)
	}
	verr.add("new_password", checkPassword(next))
	if err := verr.err(); err != nil {
		return nil, err
	}
	admin, err := m.admins.AdminByID(ctx, claims.AdminID)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("admin account is gone: %w", ErrUnauthenticated)
	}
	if err != nil {
		return nil, fmt.Errorf("look up admin: %w", err)
	}
	ok, err := m.checkCounted(ctx, admin.Email, true, admin.PasswordHash, admin.FailedLogins, admin.LastFailedLogin, current)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("incorrect current password: %w", ErrUnauthenticated)
	}
	hash, err := m.hashPassword(ctx, next)
	if err != nil {
		return nil, err
	}
	gen, err := m.admins.SetAdminPassword(ctx, admin.ID, hash)
	if err != nil {
		return nil, fmt.Errorf("set password: %w", err)
	}
	admin.TokenGeneration = gen
	m.log.InfoContext(ctx, "admin password changed; earlier tokens revoked", "admin_id", admin.ID)
	m.recordOne(ctx, m.newEvent(EventAdminPasswordChanged, claims.OrgID, admin.ID, map[string]any{
		"admin_id": string(admin.ID), "email": admin.Email,
	}))
	role := claims.Role
	if !role.Valid() {
		// Claims from VerifyToken of a token from before roles.
		role = RoleMember
		if mb, err := m.members.Membership(ctx, claims.OrgID, admin.ID); err == nil {
			role = mb.Role
		}
	}
	return m.IssueToken(admin, &Membership{OrgID: claims.OrgID, AdminID: admin.ID, Role: role})
}

// Logout revokes the token of claims until it expires: AuthenticateToken rejects
// it from then on.
func (m *Manager) Logout(ctx context.Context, claims *Claims) error {
	// The event first, with an id that comes from the token's: a logout
	// that fails after it leaves the token valid, so the client can try
	// again (once revoked, the token would no longer reach Logout), and
	// the event is recorded once.
	ev := m.newEvent(EventAdminLoggedOut, claims.OrgID, claims.AdminID, map[string]any{
		"admin_id": string(claims.AdminID), "email": claims.Email, "token_id": claims.ID,
	})
	ev.ID = derivedEventID("logout", claims.ID)
	if err := m.recordUnlocked(ctx, ev); err != nil {
		return err
	}
	// Kept past expiry by the largest leeway, while the token could
	// still verify.
	if err := m.revocations.RevokeToken(ctx, claims.ID, claims.ExpiresAt.Add(MaxLeeway)); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	return nil
}
