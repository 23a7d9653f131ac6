package tenancy

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

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
}

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

func (m *Manager) hashPassword(password string) ([]byte, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), m.cost)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// dummy returns a hash of the configured cost that no password matches, so
// that a login for an unknown email costs the same as a wrong password.
func (m *Manager) dummy() []byte {
	m.dummyOnce.Do(func() {
		h, err := bcrypt.GenerateFromPassword([]byte("tenancy: no such admin account"), m.cost)
		if err != nil {
			panic(fmt.Sprintf("tenancy: bcrypt of a constant failed: %v", err))
		}
		m.dummyHash = h
	})
	return m.dummyHash
}

// compareHash is bcrypt's comparison; tests count its calls.
var compareHash = bcrypt.CompareHashAndPassword

// errBadCredentials is the one answer to an unknown email or a wrong
// password, so that the two cannot be told apart.
var errBadCredentials = fmt.Errorf("incorrect email or password: %w", ErrUnauthenticated)

// Authenticate returns the admin whose email and password these are. It
// returns a *ValidationError for a malformed email or a password outside
// 8..72 bytes, and ErrUnauthenticated, identically and after the same bcrypt
// work, for an unknown email and for a wrong password. It takes one database
// round trip and one bcrypt comparison.
func (m *Manager) Authenticate(ctx context.Context, email, password string) (*Admin, error) {
	var verr ValidationError
	e, msg := normalizeEmail(email)
	verr.add("email", msg)
	verr.add("password", checkPassword(password))
	if err := verr.err(); err != nil {
		return nil, err
	}
	// Build the dummy hash before the lookup, so that the first login for
	// an unknown email costs no more than the first for a known one.
	dummy := m.dummy()
	admin, err := m.store.AdminByEmail(ctx, e)
	if errors.Is(err, ErrNotFound) {
		_ = compareHash(dummy, []byte(password))
		return nil, errBadCredentials
	}
	if err != nil {
		return nil, fmt.Errorf("look up admin: %w", err)
	}
	if compareHash(admin.PasswordHash, []byte(password)) != nil {
		return nil, errBadCredentials
	}
	return admin, nil
}

// Token is an issued access token.
type Token struct {
	AccessToken string
	// TokenType is always "bearer".
	TokenType string
	AdminID   AdminID
	OrgID     OrgID
	ExpiresAt time.Time
}

// Login authenticates an admin (see Authenticate) and issues a token
// scoped to the admin's organization.
func (m *Manager) Login(ctx context.Context, email, password string) (*Token, error) {
	admin, err := m.Authenticate(ctx, email, password)
	if err != nil {
		return nil, err
	}
	return m.IssueToken(admin)
}

// Claims are the verified contents of a token.
type Claims struct {
	AdminID   AdminID
	OrgID     OrgID
	Email     string
	Subject   string
	Issuer    string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// jwtClaims is the wire form of Claims.
type jwtClaims struct {
	AdminID AdminID `json:"admin_id"`
	OrgID   OrgID   `json:"org_id"`
	Email   string  `json:"email"`
	jwt.RegisteredClaims
}

// IssueToken signs a token for admin, valid for the configured lifetime.
// It returns ErrInvalid if admin lacks an id or an organization.
func (m *Manager) IssueToken(admin *Admin) (*Token, error) {
	if admin == nil || admin.ID == "" || admin.OrgID == "" {
		return nil, fmt.Errorf("issue token: admin without id or organization: %w", ErrInvalid)
	}
	now := m.now()
	exp := now.Add(m.lifetime)
	c := jwtClaims{
		AdminID: admin.ID,
		OrgID:   admin.OrgID,
		Email:   admin.Email,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   string(admin.ID),
			Issuer:    m.issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
	}
	s, err := jwt.NewWithClaims(m.method, c).SignedString(m.secret)
	if err != nil {
		return nil, fmt.Errorf("sign token: %w", err)
	}
	return &Token{AccessToken: s, TokenType: "bearer", AdminID: admin.ID, OrgID: admin.OrgID, ExpiresAt: exp.Truncate(time.Second)}, nil
}

// VerifyToken checks a token's signature, algorithm, issuer and expiry and
// returns its claims. It returns ErrUnauthenticated for any token that does
// not verify. It does no I/O, so it cannot tell whether the admin or the
// organization still exists: operations that act on them look them up.
func (m *Manager) VerifyToken(token string) (*Claims, error) {
	var c jwtClaims
	_, err := m.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return m.secret, nil })
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	if c.AdminID == "" || c.OrgID == "" || c.Subject != string(c.AdminID) || c.IssuedAt == nil {
		return nil, fmt.Errorf("%w: token lacks admin_id, org_id, sub or iat", ErrUnauthenticated)
	}
	return &Claims{
		AdminID:   c.AdminID,
		OrgID:     c.OrgID,
		Email:     c.Email,
		Subject:   c.Subject,
		Issuer:    c.Issuer,
		IssuedAt:  c.IssuedAt.Time,
		ExpiresAt: c.ExpiresAt.Time,
	}, nil
}
