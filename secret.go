package tenancy

import (
	"bytes"
	"fmt"
	"math"
)

// minSecretEntropy is the least entropy, in bits, a signing secret must
// show by CheckSigningSecret's estimate.
const minSecretEntropy = 96

// placeholderMarks are what the secrets of examples and templates hold
// (the .env.example of this project holds the first) and random ones do
// not.
var placeholderMarks = [][]byte{
	[]byte("change-in-production"), []byte("change-me"), []byte("changeme"), []byte("change_me"),
	[]byte("your-"), []byte("your_"), []byte("example"), []byte("placeholder"), []byte("replace-me"), []byte("replaceme"),
}

// CheckSigningSecret reports why secret is unfit to sign tokens: shorter
// than MinSecretLength bytes, a placeholder (such as .env.example's
// "your-very-secure-secret-key-change-in-production", which anyone can
// read and forge tokens with), or too regular to be random (an estimate
// of its entropy from its byte frequencies under 96 bits,
// or fewer than 10 distinct bytes: 32 × "a" has none). The estimate cannot
// prove a secret random; it refuses the secrets people type. Make one with
// openssl rand -base64 48. WithSigningSecret and
// WithPreviousSigningSecrets apply it.
func CheckSigningSecret(secret []byte) error {
	const hint = "make one with: openssl rand -base64 48"
	if len(secret) < MinSecretLength {
		return fmt.Errorf("signing secret is %d bytes, need at least %d; %s", len(secret), MinSecretLength, hint)
	}
	lower := bytes.ToLower(secret)
	for _, m := range placeholderMarks {
		if bytes.Contains(lower, m) {
			return fmt.Errorf("signing secret is a placeholder (it contains %q), which anyone who has read the example can forge tokens with; %s", m, hint)
		}
	}
	var counts [256]int
	for _, b := range secret {
		counts[b]++
	}
	distinct, bits := 0, 0.0
	for _, c := range counts {
		if c > 0 {
			distinct++
			p := float64(c) / float64(len(secret))
			bits -= float64(c) * math.Log2(p)
		}
	}
	if distinct < 10 || bits < minSecretEntropy {
		return fmt.Errorf("signing secret has too little entropy (%d distinct bytes, about %.0f bits by their frequencies; need 10 and %d): it is not random; %s",
			distinct, bits, minSecretEntropy, hint)
	}
	return nil
}
