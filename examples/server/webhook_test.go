package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/mongostore"
	"github.com/tenancy/tenancy/webhook"
)

// receiver is a webhook endpoint on loopback that refuses the first
// attempts of every event, and records the deliveries it took.
type receiver struct {
	secret   string
	failures int // attempts refused per event before one is taken
	mu       sync.Mutex
	attempts map[string]int
	taken    []*tenancy.Event // in the order taken, repeats included
	bad      int              // deliveries whose signature did not verify
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err := webhook.Verify(rc.secret, r.Header, body); err != nil {
		rc.bad++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var ev tenancy.Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != r.Header.Get(webhook.HeaderID) {
		rc.bad++
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	rc.attempts[ev.ID]++
	if rc.attempts[ev.ID] <= rc.failures {
		http.Error(w, "not now", http.StatusServiceUnavailable)
		return
	}
	rc.taken = append(rc.taken, &ev)
	w.WriteHeader(http.StatusNoContent)
}

// distinct returns how many distinct events were taken.
func (rc *receiver) distinct() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	seen := map[string]bool{}
	for _, ev := range rc.taken {
		seen[ev.ID] = true
	}
	return len(seen)
}

// TestWebhookDeliveryAcrossKills runs the built server with WEBHOOK_URL
// pointing at a receiver on loopback that refuses the first two attempts
// of every event, SIGKILLs the server twice while deliveries are under
// way and restarts it at once, and checks that every recorded event
// arrives, signed, in order per organization, each new event after the
// ones before it (a repeat of the last one is allowed: at least once);
// and that a deleted organization's events are deleted once its
// organization.deleted event was delivered.
func TestWebhookDeliveryAcrossKills(t *testing.T) {
	bin := buildServer(t)
	uri := startDatabase(t)
	const dbName = "webhooktest"
	db := connectDatabase(t, uri, dbName)

	rc := &receiver{secret: webhook.NewSecret(), failures: 2, attempts: map[string]int{}}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	env := []string{"MONGO_URI=" + uri, "PRIMARY_DB=" + dbName, "SECRET_KEY=" + hex.EncodeToString(key), "LOGIN_RATE_LIMIT=0",
		"WEBHOOK_URL=" + hook.URL + "/hooks?token=x", "WEBHOOK_SECRET=" + rc.secret, "WEBHOOK_RETRY_FIRST=50ms", "WEBHOOK_RETRY_MAX=200ms"}
	dataDir := t.TempDir()
	srv := startServer(t, bin, dataDir, "", env...)
	assert.NotContains(t, srv.logs.String(), "token=x", "the webhook URL's query is not logged")

	// Three organizations, each with a few events.
	const orgs = 3
	tokens := make([]string, orgs)
	ids := make([]string, orgs)
	for i := range orgs {
		email := fmt.Sprintf("owner%d@hook.test", i)
		status, body := srv.do(t, http.MethodPost, "/org/create", "", map[string]any{
			"organization_name": fmt.Sprintf("Hook Org %d", i), "email": email, "password": killPassword})
		require.Equal(t, http.StatusCreated, status, "%v", body)
		ids[i] = body["id"].(string)
		status, body = srv.do(t, http.MethodPost, "/admin/login", "", map[string]any{"email": email, "password": killPassword})
		require.Equal(t, http.StatusOK, status, "%v", body)
		tokens[i] = body["access_token"].(string)
		for j := range 3 {
			status, body = srv.do(t, http.MethodPost, "/org/invitations", tokens[i], map[string]any{"email": fmt.Sprintf("m%d-%d@hook.test", i, j)})
			require.Equal(t, http.StatusCreated, status, "%v", body)
		}
	}
	// Deliveries are under way: kill, restart, twice.
	midway := 0
	for range 2 {
		time.Sleep(300 * time.Millisecond)
		if n := rc.distinct(); n > 0 && n < 3*5 {
			midway++
		}
		srv = restartServer(t, srv, bin, dataDir, env)
	}
	assert.Positive(t, midway, "a kill came while some events were delivered and others not")
	status, body := srv.do(t, http.MethodPut, "/org/update", tokens[1], map[string]any{
		"organization_name": "Hook Org 1 Renamed", "email": "owner1@hook.test", "password": killPassword})
	require.Equal(t, http.StatusOK, status, "%v", body)
	status, body = srv.do(t, http.MethodDelete, "/org/delete", tokens[2], map[string]any{"organization_name": "Hook Org 2"})
	require.Equal(t, http.StatusOK, status, "%v", body)
	time.Sleep(200 * time.Millisecond)
	srv = restartServer(t, srv, bin, dataDir, env)

	// Every event of the surviving organizations, as the audit log has
	// them, and the deleted one's: created, logged_in, 3 invited, deleted.
	want := map[string][]string{}
	for i := range 2 {
		var all []string
		status, body := srv.do(t, http.MethodGet, "/org/events?limit=100", tokens[i], nil)
		require.Equal(t, http.StatusOK, status, "%v", body)
		for _, ev := range body["events"].([]any) {
			all = append(all, ev.(map[string]any)["id"].(string))
		}
		want[ids[i]] = all
	}
	require.Len(t, want[ids[0]], 5, "created, logged_in, invited ×3")
	require.Len(t, want[ids[1]], 6, "and renamed")
	require.Eventually(t, func() bool { return rc.distinct() == 5+6+6 }, 60*time.Second, 50*time.Millisecond,
		"every event delivered: %d of %d", rc.distinct(), 17)

	rc.mu.Lock()
	defer rc.mu.Unlock()
	assert.Zero(t, rc.bad, "every delivery verifies")
	byOrg := map[tenancy.OrgID][]*tenancy.Event{}
	for _, ev := range rc.taken {
		byOrg[ev.OrgID] = append(byOrg[ev.OrgID], ev)
	}
	for i := range orgs {
		got := byOrg[tenancy.OrgID(ids[i])]
		var order []string
		var seq int64
		for _, ev := range got {
			if ev.Seq == seq && len(order) > 0 && order[len(order)-1] == ev.ID {
				continue // the last one again, its cursor lost to a kill
			}
			assert.Equal(t, seq+1, ev.Seq, "org %d: in order, none skipped", i)
			seq = ev.Seq
			order = append(order, ev.ID)
		}
		if i < 2 {
			assert.Equal(t, want[ids[i]], order, "org %d: the audit log's events, in its order", i)
		} else {
			require.Len(t, order, 6)
			assert.Equal(t, tenancy.EventOrgDeleted, got[len(got)-1].Type)
		}
	}
	assert.Greater(t, len(rc.attempts), 0)
	for id, n := range rc.attempts {
		assert.GreaterOrEqual(t, n, 3, "event %s was refused twice, then taken", id)
	}

	// The deleted organization's events went after their delivery.
	require.Eventually(t, func() bool {
		n, err := db.Collection(mongostore.EventsCollection).CountDocuments(context.Background(), bson.D{{Key: "org", Value: ids[2]}})
		return err == nil && n == 0
	}, 10*time.Second, 50*time.Millisecond, "the deleted organization's events are deleted")
	marks, err := db.Collection(mongostore.EventMarksCollection).CountDocuments(context.Background(), bson.D{})
	require.NoError(t, err)
	assert.Zero(t, marks, "nothing left to deliver")
}
