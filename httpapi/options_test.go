package httpapi_test

import (
	"log/slog"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/httpapi"
	"github.com/tenancy/tenancy/memstore"
)

// TestNewRefusesBadOptions checks that a value an option cannot use is an
// error from New, naming the option, instead of being dropped for the
// default without a word.
func TestNewRefusesBadOptions(t *testing.T) {
	m, err := tenancy.New(memstore.New(), tenancy.WithSigningSecret([]byte("options-test-secret-of-at-least-32-bytes")))
	require.NoError(t, err)
	tests := map[string]struct {
		opt  httpapi.Option
		want string
	}{
		"nil logger":             {httpapi.WithLogger(nil), "logger"},
		"zero body limit":        {httpapi.WithMaxBodyBytes(0), "body limit"},
		"negative body limit":    {httpapi.WithMaxBodyBytes(-1), "body limit"},
		"zero tenant wait":       {httpapi.WithTenantWait(0), "tenant wait"},
		"negative ready timeout": {httpapi.WithReadyTimeout(-time.Second), "ready timeout"},
		"NaN login rate":         {httpapi.WithLoginRateLimit(math.NaN(), 10), "login rate"},
		"infinite login rate":    {httpapi.WithLoginRateLimit(math.Inf(1), 10), "login rate"},
		"negative login rate":    {httpapi.WithLoginRateLimit(-1, 10), "login rate"},
		"login burst 0":          {httpapi.WithLoginRateLimit(5, 0), "login burst"},
		"invalid proxy prefix":   {httpapi.WithTrustedProxies(netip.Prefix{}), "trusted proxy"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			h, err := httpapi.New(m, httpapi.WithLogger(slog.Default()), tt.opt)
			assert.ErrorContains(t, err, tt.want)
			assert.Nil(t, h)
		})
	}
	_, err = httpapi.New(nil)
	assert.ErrorContains(t, err, "manager")
	h, err := httpapi.New(m, httpapi.WithLoginRateLimit(0, 0), httpapi.WithMaxBodyBytes(1<<20),
		httpapi.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")))
	require.NoError(t, err, "0 switches the login limit off, whatever the burst")
	assert.NotNil(t, h)
}
