package tenancy

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// WithSigningSecret makes tokens HMAC-signed with secret (HS256 unless
// WithHMACAlgorithm says otherwise). The secret must pass
// CheckSigningSecret: at least MinSecretLength bytes, random-looking, not
// a placeholder. A Manager needs either it or WithEd25519Key, not both.
func WithSigningSecret(secret []byte) Option {
	return func(c *config) error {
		if err := CheckSigningSecret(secret); err != nil {
			return fmt.Errorf("tenancy: %w", err)
		}
		c.secret = append([]byte(nil), secret...)
		return nil
	}
}

// WithPreviousSigningSecrets sets HMAC secrets that still verify tokens
// but sign none: rotate a secret by making it previous and setting a new
// one, and drop it once the tokens it signed have expired. Tokens name
// their key in the kid header. It needs WithSigningSecret.
func WithPreviousSigningSecrets(secrets ...[]byte) Option {
	return func(c *config) error {
		for _, s := range secrets {
			if err := CheckSigningSecret(s); err != nil {
				return fmt.Errorf("tenancy: previous %w", err)
			}
			c.previous = append(c.previous, append([]byte(nil), s...))
		}
		return nil
	}
}

// WithEd25519Key makes tokens EdDSA-signed with key (RFC 8037), so that
// other services can verify them with the public keys of Manager.JWKS
// (httpapi serves them at /.well-known/jwks.json) without sharing a
// secret. A Manager signs with one key: New refuses it together with
// WithSigningSecret, WithPreviousSigningSecrets or WithHMACAlgorithm.
func WithEd25519Key(key ed25519.PrivateKey) Option {
	return func(c *config) error {
		if len(key) != ed25519.PrivateKeySize {
			return fmt.Errorf("tenancy: Ed25519 private key is %d bytes, want %d", len(key), ed25519.PrivateKeySize)
		}
		c.edKey = append(ed25519.PrivateKey(nil), key...)
		return nil
	}
}

// WithPreviousEd25519Keys sets public keys that still verify EdDSA tokens
// after a key rotation. It needs WithEd25519Key.
func WithPreviousEd25519Keys(keys ...ed25519.PublicKey) Option {
	return func(c *config) error {
		for _, k := range keys {
			if len(k) != ed25519.PublicKeySize {
				return fmt.Errorf("tenancy: Ed25519 public key is %d bytes, want %d", len(k), ed25519.PublicKeySize)
			}
			c.edPrevious = append(c.edPrevious, append(ed25519.PublicKey(nil), k...))
		}
		return nil
	}
}

// WithHMACAlgorithm sets the algorithm tokens are signed with by the
// secret of WithSigningSecret: HS256 (the default), HS384 or HS512. Tokens
// signed with any other algorithm are rejected. For EdDSA, give
// WithEd25519Key instead.
func WithHMACAlgorithm(name string) Option {
	return func(c *config) error {
		switch name {
		case "HS256", "HS384", "HS512":
			c.hmacAlgorithm = name
			return nil
		}
		return fmt.Errorf("tenancy: unsupported HMAC algorithm %q (want HS256, HS384 or HS512; for EdDSA give WithEd25519Key)", name)
	}
}

// WithLeeway sets the clock skew allowed when checking exp and iat
// (default none, at most MaxLeeway).
func WithLeeway(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 || d > MaxLeeway {
			return fmt.Errorf("tenancy: leeway %v outside 0..%v", d, MaxLeeway)
		}
		c.leeway = d
		return nil
	}
}

// WithHashConcurrency sets how many bcrypt computations run at once
// (default: one per core, at most GOMAXPROCS), and WithHashWait how long a
// login waits for one before it is refused with ErrOverloaded (default
// 10 s). A flood of logins then cannot take every CPU from
// other requests. Run with GOMAXPROCS one above the core count to keep a
// processor for them: bcrypt then also runs at a lower OS priority (on
// Linux), so handlers get the CPU first; see BENCHMARKS.md for what that
// costs.
func WithHashConcurrency(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("tenancy: hash concurrency %d must be at least 1", n)
		}
		c.hashSlots = n
		return nil
	}
}

// WithHashQueue sets how many requests may wait for each bcrypt slot
// (default 8): a burst of sign-ups or logins a few times the slots
// queues, and a request past the queue is refused at once with a
// *RetryError of ErrOverloaded (HTTP 503). 0 refuses every request that
// finds the slots taken.
func WithHashQueue(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("tenancy: hash queue %d must not be negative", n)
		}
		c.hashQueue = n
		return nil
	}
}

// WithHashWait sets the longest a request queued for a bcrypt slot waits
// before it is refused with ErrOverloaded (default 10 s); see
// WithHashConcurrency and WithHashQueue.
func WithHashWait(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("tenancy: hash wait %v must not be negative", d)
		}
		c.hashWait = d
		return nil
	}
}

// WithLoginBackoff sets the throttling of failed logins: after `after`
// failures in a row an address must wait base, doubling with each further
// failure, up to max (default 10 failures, 1 s, 15 min). after = 0 turns
// throttling off.
func WithLoginBackoff(after int, base, max time.Duration) Option {
	return func(c *config) error {
		if after < 0 || base <= 0 || max < base {
			return fmt.Errorf("tenancy: login back-off after %d failures, %v to %v: want after >= 0 and 0 < base <= max", after, base, max)
		}
		c.backoffAfter, c.backoffBase, c.backoffMax = after, base, max
		return nil
	}
}

// WithTokenLifetime sets how long issued tokens stay valid (default 60 minutes).
func WithTokenLifetime(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("tenancy: token lifetime %v must be positive", d)
		}
		c.lifetime = d
		return nil
	}
}

// WithIssuer sets the token issuer, written to and required in the iss claim
// (default "tenancy").
func WithIssuer(iss string) Option {
	return func(c *config) error {
		if iss == "" {
			return errors.New("tenancy: issuer must not be empty")
		}
		c.issuer = iss
		return nil
	}
}

// WithBcryptCost sets the bcrypt cost of new password hashes (default 12).
// Costs outside MinBcryptCost..MaxBcryptCost are refused.
func WithBcryptCost(cost int) Option {
	return func(c *config) error {
		if cost < MinBcryptCost || cost > MaxBcryptCost {
			return fmt.Errorf("tenancy: bcrypt cost %d outside %d..%d (each step doubles the time of a hash; %d takes about a second)",
				cost, MinBcryptCost, MaxBcryptCost, MaxBcryptCost)
		}
		c.cost = cost
		return nil
	}
}

// WithOperationLease sets how long the lock of a create, rename or delete
// on its organization lasts without renewal (default
// DefaultOperationLease, at least MinOperationLease). The operation renews
// it every third of the lease; if renewals fail until a fifth of the
// lease is left, the operation stops with ErrLeaseLost before another
// process may take the lock over. Recovery settles an operation once its
// lease has run out.
func WithOperationLease(d time.Duration) Option {
	return func(c *config) error {
		if d < MinOperationLease {
			return fmt.Errorf("tenancy: operation lease %v is under the minimum %v", d, MinOperationLease)
		}
		c.lease = d
		return nil
	}
}

// WithClock sets the source of the current time (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("tenancy: clock must not be nil")
		}
		c.now = now
		return nil
	}
}

// WithLogger sets the logger for lifecycle events (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("tenancy: logger must not be nil")
		}
		c.log = l
		return nil
	}
}
