package tenancy_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/memstore"
)

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{
		"admin@acme.com", " Admin@ACME.com ", "a@b", "a@[127.0.0.1]", "Bob <bob@acme.com>", "\"a b\"@acme.com",
		"a@acme.com\x00", "a@acme..com", "@acme.com", "a@", "ä@bücher.de", "a@acme.com,b@acme.com", "\xff@acme.com",
		strings.Repeat("a", 250) + "@acme.com", "a(comment)@acme.com", "$ne@acme.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, email string) {
		e, err := tenancy.NormalizeEmail(email)
		if err != nil {
			if !errors.Is(err, tenancy.ErrInvalid) {
				t.Fatalf("NormalizeEmail(%q) error %v does not match ErrInvalid", email, err)
			}
			return
		}
		if e == "" || len(e) > tenancy.MaxEmailLength || !utf8.ValidString(e) || e != strings.ToLower(e) || e != strings.TrimSpace(e) {
			t.Fatalf("NormalizeEmail(%q) = %q: empty, too long, not UTF-8, not lower-case or not trimmed", email, e)
		}
		if strings.Count(e, "@") < 1 || strings.ContainsAny(e, "<>\x00\r\n") {
			t.Fatalf("NormalizeEmail(%q) = %q is not a bare address", email, e)
		}
		again, err := tenancy.NormalizeEmail(e)
		if err != nil || again != e {
			t.Fatalf("NormalizeEmail is not idempotent on %q: %q, %v", e, again, err)
		}
	})
}

// FuzzVerifyToken feeds VerifyToken mutations of a real token and any
// other text: none may panic, and any that verifies must carry exactly the
// real token's claims (only our key can sign; a different encoding of the
// same signature is all a mutation can get through).
func FuzzVerifyToken(f *testing.F) {
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m, err := tenancy.New(memstore.New(), tenancy.WithSigningSecret(testSecret), tenancy.WithBcryptCost(tenancy.MinBcryptCost),
		tenancy.WithClock(func() time.Time { return clock }))
	if err != nil {
		f.Fatal(err)
	}
	// Signed by hand, not by IssueToken, so that every fuzzing process
	// makes the same token (IssueToken draws a fresh jti).
	good, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"admin_id": "507f191e810c19729de860ea", "org_id": "507f1f77bcf86cd799439011", "email": "a@acme.com",
		"sub": "507f191e810c19729de860ea", "iss": tenancy.DefaultIssuer, "jti": "0123456789abcdef01234567",
		"iat": clock.Unix(), "exp": clock.Add(time.Hour).Unix(),
	}).SignedString(testSecret)
	if err != nil {
		f.Fatal(err)
	}
	want, err := m.VerifyToken(good)
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(good, ".")
	for _, s := range []string{
		good, "", ".", "..", "a.b.c", parts[0] + ".." + parts[2], parts[0] + "." + parts[1] + ".",
		"eyJhbGciOiJub25lIn0." + parts[1] + ".", strings.Repeat("a", 5000), good + "x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		got, err := m.VerifyToken(token)
		if err != nil {
			if !errors.Is(err, tenancy.ErrUnauthenticated) {
				t.Fatalf("VerifyToken error %v does not match ErrUnauthenticated", err)
			}
			return
		}
		same := *got
		same.IssuedAt, same.ExpiresAt = want.IssuedAt, want.ExpiresAt
		if same != *want || !got.IssuedAt.Equal(want.IssuedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
			t.Fatalf("VerifyToken(%q) accepted other claims: %+v", token, got)
		}
	})
}
