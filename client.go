package tenancy

import (
	"context"
	"fmt"
	"net/netip"
)

// defaultAccountBackoffAfter is how many failed password checks in a row,
// from any networks, put a whole account under the back-off (see
// WithAccountBackoff). NIST SP 800-63B allows at most 100.
const defaultAccountBackoffAfter = 100

type clientAddrKey struct{}

// ContextWithClientAddr returns ctx carrying the address of the client
// the request comes from (httpapi sets it: the connection's peer, or the
// trusted proxy's X-Forwarded-For). With it, failed password checks are
// counted per account and client network (an IPv4 /24, an IPv6 /64), so
// that failures from one network do not lock the account for another,
// under an account-wide limit far higher (WithAccountBackoff). Without
// it, they are counted per account alone.
func ContextWithClientAddr(ctx context.Context, addr netip.Addr) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, addr)
}

// clientNetwork is the network of ctx's client address, or "" if it has
// none.
func clientNetwork(ctx context.Context) string {
	a, ok := ctx.Value(clientAddrKey{}).(netip.Addr)
	if !ok || !a.IsValid() {
		return ""
	}
	a = a.Unmap()
	bits := 24
	if a.Is6() {
		bits = 64
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}

// WithAccountBackoff sets how many failed password checks in a row, from
// any client networks, put the whole account under the back-off of
// WithLoginBackoff (default 100): it ends an online
// guessing attack spread over many networks, while one network's
// failures, which lock only that network after WithLoginBackoff's
// threshold, cannot lock the owner out from another. 0 turns the
// account-wide limit off. It applies to requests whose context carries a
// client address (ContextWithClientAddr).
func WithAccountBackoff(after int) Option {
	return func(c *config) error {
		if after < 0 {
			return fmt.Errorf("tenancy: account back-off threshold %d must not be negative", after)
		}
		c.accountAfter = after
		return nil
	}
}

// networkKey is the key failures of email from ctx's client network are
// counted under, or "" without a client address. An email holds no space.
func networkKey(ctx context.Context, email string) string {
	n := clientNetwork(ctx)
	if n == "" {
		return ""
	}
	return email + " " + n
}
