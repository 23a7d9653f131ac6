package tenancy_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/memstore"
)

// hookLog records what Hooks are told.
type hookLog struct {
	mu        sync.Mutex
	logins    map[string]int
	ops       map[string]int
	settled   map[string]int
	traces    map[string]int // name and result of each ended trace
	hashWaits int
}

// traceKey marks the context a traced operation runs in.
type traceKey struct{}

// tracedStore checks that what the Manager asks of the store during a
// traced operation runs in the operation's context.
type tracedStore struct {
	tenancy.Store
	untraced *int
	mu       *sync.Mutex
}

func (s tracedStore) CreateOrg(ctx context.Context, org *tenancy.Org) error {
	if ctx.Value(traceKey{}) == nil {
		s.mu.Lock()
		*s.untraced++
		s.mu.Unlock()
	}
	return s.Store.CreateOrg(ctx, org)
}

func (l *hookLog) hooks() tenancy.Hooks {
	l.logins, l.ops, l.settled, l.traces = map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	return tenancy.Hooks{
		Login:            func(r string) { l.mu.Lock(); l.logins[r]++; l.mu.Unlock() },
		PasswordHashWait: func(time.Duration) { l.mu.Lock(); l.hashWaits++; l.mu.Unlock() },
		Operation:        func(op, r string) { l.mu.Lock(); l.ops[op+" "+r]++; l.mu.Unlock() },
		RecoverySettled:  func(k string, n int) { l.mu.Lock(); l.settled[k] += n; l.mu.Unlock() },
		Trace: func(ctx context.Context, name string) (context.Context, func(error)) {
			return context.WithValue(ctx, traceKey{}, name), func(err error) {
				l.mu.Lock()
				defer l.mu.Unlock()
				l.traces[name+" "+map[bool]string{true: "ok", false: "err"}[err == nil]]++
			}
		},
	}
}

func TestHooks(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var l hookLog
	untraced := 0
	store := tracedStore{Store: memstore.New(), untraced: &untraced, mu: &l.mu}
	m := newManager(t, store, tenancy.WithHooks(l.hooks()), tenancy.WithLoginBackoff(2, time.Minute, time.Hour))
	org := createOrg(t, m, "Org A", "owner@a.com")
	_, err := m.CreateOrg(ctx, tenancy.CreateOrgParams{Name: "Org A", AdminEmail: "other@a.com", AdminPassword: pw})
	require.ErrorIs(t, err, tenancy.ErrConflict)
	_, owner := authed(t, m, "owner@a.com", pw, "")
	_, err = m.RenameOrg(ctx, org.ID, "")
	require.ErrorIs(t, err, tenancy.ErrInvalid)
	_, err = m.AcceptInvitation(ctx, invite(t, m, owner, "x@a.com", tenancy.RoleMember), pw)
	require.NoError(t, err)
	for range 3 {
		_, err = m.Login(ctx, "x@a.com", "WrongPassword1")
	}
	require.ErrorIs(t, err, tenancy.ErrThrottled)

	// A create left unfinished in the journal, settled by recovery.
	ghost := &tenancy.Org{ID: "0123456789abcdef01234567", Name: "Ghost", Identifier: "ghost", TenantCollection: "tenant_ghost",
		AdminID: "0123456789abcdef01234568", State: tenancy.OrgCreating, CreatedAt: time.Now(), ModifiedAt: time.Now()}
	require.NoError(t, store.PutOperation(ctx, &tenancy.Operation{OrgID: ghost.ID, Kind: tenancy.OpCreate, Names: []string{"ghost"}, Started: time.Now()}))
	require.NoError(t, store.ReserveName(ctx, "ghost", ghost.ID, time.Now()))
	require.NoError(t, store.Store.CreateOrg(ctx, ghost))
	_, err = m.RecoverPending(ctx)
	require.NoError(t, err)

	l.mu.Lock()
	defer l.mu.Unlock()
	assert.Equal(t, map[string]int{"success": 1, "failure": 2, "throttled": 1}, l.logins)
	assert.Equal(t, map[string]int{
		"create success": 1, "create conflict": 1, "rename invalid": 1,
		"invite success": 1, "accept_invitation success": 1,
	}, l.ops)
	assert.Equal(t, map[string]int{"create_rolled_back": 1}, l.settled)
	assert.GreaterOrEqual(t, l.hashWaits, 4, "each hash and comparison: create, login, accept, two wrong passwords")
	assert.Equal(t, 1, l.traces["create ok"])
	assert.Equal(t, 1, l.traces["create err"])
	assert.Equal(t, 1, l.traces["login ok"])
	assert.Equal(t, 3, l.traces["login err"])
	assert.Positive(t, l.traces["authenticate_token ok"])
	assert.Equal(t, 1, l.traces["accept_invitation ok"])
	assert.Zero(t, untraced, "the store's calls run in the operation's context")
}
