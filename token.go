package tenancy

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are the verified contents of a token.
type Claims struct {
	AdminID AdminID
	OrgID   OrgID
	Email   string
	Subject string
	Issuer  string
	// ID is the token's own id (jti), which Logout revokes.
	ID string
	// Generation is the admin's TokenGeneration when the token was issued.
	Generation int64
	// Role is the admin's role in the organization: the one held now in
	// claims from AuthenticateToken, the one held when the token was
	// issued in claims from VerifyToken alone.
	Role      Role
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// jwtClaims is the wire form of Claims.
type jwtClaims struct {
	AdminID    AdminID `json:"admin_id"`
	OrgID      OrgID   `json:"org_id"`
	Email      string  `json:"email"`
	Generation int64   `json:"gen,omitempty"`
	Role       Role    `json:"role,omitempty"`
	jwt.RegisteredClaims
}

// key is one key tokens are signed or verified with.
type key struct {
	kid    string
	sign   any // []byte or ed25519.PrivateKey; nil for a previous key
	verify any // []byte or ed25519.PublicKey
}

// hmacKID names an HMAC secret without revealing it: the start of a
// SHA-256 of it, which a 256-bit secret cannot be recovered from.
func hmacKID(secret []byte) string {
	sum := sha256.Sum256(append([]byte("tenancy kid\x00"), secret...))
	return "hs-" + base64.RawURLEncoding.EncodeToString(sum[:9])
}

// ed25519KID is the RFC 7638 thumbprint of an Ed25519 public key.
func ed25519KID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// IssueToken signs a token for admin in the organization and with the
// role of its membership mb, valid for the configured lifetime, with the
// current key, whose id is in the token's kid header. It does no I/O and
// checks nothing but its arguments: it returns ErrInvalid if admin lacks
// an id or mb is not admin's membership.
func (m *Manager) IssueToken(admin *Admin, mb *Membership) (*Token, error) {
	if admin == nil || admin.ID == "" || mb == nil || mb.OrgID == "" || mb.AdminID != admin.ID || !mb.Role.Valid() {
		return nil, fmt.Errorf("issue token: admin without id, or not the membership's: %w", ErrInvalid)
	}
	now := m.now()
	exp := now.Add(m.lifetime)
	c := jwtClaims{
		AdminID:    admin.ID,
		OrgID:      mb.OrgID,
		Email:      admin.Email,
		Generation: admin.TokenGeneration,
		Role:       mb.Role,
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        newObjectID(now),
			Subject:   string(admin.ID),
			Issuer:    m.issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
	}
	t := jwt.NewWithClaims(m.method, c)
	t.Header["kid"] = m.current.kid
	s, err := t.SignedString(m.current.sign)
	if err != nil {
		return nil, fmt.Errorf("sign token: %w", err)
	}
	return &Token{AccessToken: s, TokenType: "bearer", AdminID: admin.ID, OrgID: mb.OrgID, Role: mb.Role, ExpiresAt: exp.Truncate(time.Second)}, nil
}

// MaxTokenLength bounds the tokens VerifyToken parses; ours are a few
// hundred bytes.
const MaxTokenLength = 4096

// VerifyToken checks a token's signature (with the key its kid names: the
// current key or a previous one), algorithm, issuer and expiry and returns
// its claims. It returns ErrUnauthenticated for any token that does not
// verify. It does no I/O, so it cannot tell whether the token was revoked
// or its admin or organization still exists: AuthenticateToken does.
func (m *Manager) VerifyToken(token string) (*Claims, error) {
	if len(token) > MaxTokenLength {
		return nil, fmt.Errorf("%w: token longer than %d bytes", ErrUnauthenticated, MaxTokenLength)
	}
	var c jwtClaims
	_, err := m.parser.ParseWithClaims(token, &c, m.keyFor)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	if c.AdminID == "" || c.OrgID == "" || c.Subject != string(c.AdminID) || c.IssuedAt == nil || c.ID == "" {
		return nil, fmt.Errorf("%w: token lacks admin_id, org_id, sub, jti or iat", ErrUnauthenticated)
	}
	if c.ExpiresAt.Sub(c.IssuedAt.Time) > m.lifetime+time.Second {
		// Not one we issued: a key (say, a previous secret that leaked)
		// is minting tokens longer-lived than ours.
		return nil, fmt.Errorf("%w: token lifetime over the configured %v", ErrUnauthenticated, m.lifetime)
	}
	return &Claims{
		AdminID:    c.AdminID,
		OrgID:      c.OrgID,
		Email:      c.Email,
		Subject:    c.Subject,
		Issuer:     c.Issuer,
		ID:         c.ID,
		Generation: c.Generation,
		Role:       c.Role,
		IssuedAt:   c.IssuedAt.Time,
		ExpiresAt:  c.ExpiresAt.Time,
	}, nil
}

// keyFor returns the verification key a token's kid header names. A token
// without kid is checked with the current key.
func (m *Manager) keyFor(t *jwt.Token) (any, error) {
	kid, ok := t.Header["kid"]
	if !ok {
		return m.current.verify, nil
	}
	s, ok := kid.(string)
	if !ok {
		return nil, errors.New("kid is not a string")
	}
	k, ok := m.keys[s]
	if !ok {
		return nil, fmt.Errorf("unknown key id %q", s)
	}
	return k, nil
}

// AuthenticateToken is VerifyToken plus the checks that need the database:
// the admin still exists and is a member of the token's organization
// (removing a member, or deleting the organization, ends its tokens for
// it), the token is of the admin's current generation (a password change
// ends the earlier ones), its organization exists and is not being
// deleted, and it was not revoked by Logout. The claims it returns carry
// the role the member holds now, which may differ from the token's. It
// rejects a token issued before the membership began (one of an earlier
// membership that was removed). It costs four reads by id, run
// concurrently: the admin, the membership,
// the organization and the revocation list. It returns
// ErrUnauthenticated for a token that fails any check.
func (m *Manager) AuthenticateToken(ctx context.Context, token string) (_ *Claims, err error) {
	ctx, end := m.trace(ctx, "authenticate_token")
	defer func() { end(err) }()
	c, err := m.VerifyToken(token)
	if err != nil {
		return nil, err
	}
	type read[T any] struct {
		v   T
		err error
	}
	rch := make(chan read[bool], 1)
	go func() {
		yes, err := m.reads.TokenRevoked(ctx, c.ID)
		rch <- read[bool]{yes, err}
	}()
	och := make(chan read[*Org], 1)
	go func() {
		org, err := m.reads.OrgByID(ctx, c.OrgID)
		och <- read[*Org]{org, err}
	}()
	mch := make(chan read[*Membership], 1)
	go func() {
		mb, err := m.reads.Membership(ctx, c.OrgID, c.AdminID)
		mch <- read[*Membership]{mb, err}
	}()
	admin, err := m.reads.AdminByID(ctx, c.AdminID)
	if err == nil && c.Generation > admin.TokenGeneration && m.cache != nil {
		// A token newer than the cached account: its password was
		// changed by another process since the account was cached.
		m.cache.invalidate(func() { m.cache.admins.Remove(c.AdminID) })
		admin, err = m.reads.AdminByID(ctx, c.AdminID)
	}
	r, o, mb := <-rch, <-och, <-mch
	if errors.Is(mb.err, ErrNotFound) && o.err == nil && o.v.AdminID == c.AdminID {
		// The primary owner of an organization from before memberships.
		mb.v, mb.err = &Membership{OrgID: c.OrgID, AdminID: c.AdminID, Role: RoleOwner}, nil
	}
	switch {
	case errors.Is(err, ErrNotFound), o.err == nil && !o.v.visible():
		return nil, fmt.Errorf("%w: the admin account or organization of this token no longer exists", ErrUnauthenticated)
	case err != nil:
		return nil, fmt.Errorf("look up admin: %w", err)
	case o.err != nil && !errors.Is(o.err, ErrNotFound):
		// A missing record (with its admin and membership still there)
		// is left to the caller's own lookup, which answers ErrNotFound.
		return nil, fmt.Errorf("look up organization: %w", o.err)
	case errors.Is(mb.err, ErrNotFound):
		return nil, fmt.Errorf("%w: not a member of this organization", ErrUnauthenticated)
	case mb.err != nil:
		return nil, fmt.Errorf("look up membership: %w", mb.err)
	case r.err != nil:
		return nil, fmt.Errorf("look up revoked tokens: %w", r.err)
	case c.Generation != admin.TokenGeneration:
		return nil, fmt.Errorf("%w: token issued before the password was changed", ErrUnauthenticated)
	case c.IssuedAt.Before(mb.v.JoinedAt.Truncate(time.Second)):
		// Issued for an earlier membership, which ended: a member
		// removed and invited again does not get its old tokens back.
		return nil, fmt.Errorf("%w: token issued before this membership began", ErrUnauthenticated)
	case r.v:
		return nil, fmt.Errorf("%w: token revoked by logout", ErrUnauthenticated)
	}
	c.Role = mb.v.Role
	return c, nil
}

// JWKS returns the JSON Web Key Set (RFC 7517) of the public keys tokens
// are verified with, current and previous, for other services to verify
// tokens without sharing a secret. With HMAC signing there are no public
// keys, and the set is empty.
func (m *Manager) JWKS() []byte { return slices.Clone(m.jwks) }

// jwksOf encodes the Ed25519 keys among keys, in the order of kids.
func jwksOf(kids []string, keys map[string]any) []byte {
	type jwk struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Kid string `json:"kid"`
		Alg string `json:"alg"`
		Use string `json:"use"`
	}
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, kid := range kids {
		if pub, ok := keys[kid].(ed25519.PublicKey); ok {
			set.Keys = append(set.Keys, jwk{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: kid, Alg: "EdDSA", Use: "sig"})
		}
	}
	b, _ := json.Marshal(set) // a struct of strings always marshals
	return b
}
