package webhook_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/webhook"
)

// A receiver checks each delivery with Verify before it trusts the
// event, and drops repeats by the event id.
func ExampleVerify() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // the WEBHOOK_SECRET the server was given
	seen := map[string]bool{}
	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body", http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(secret, r.Header, body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var ev tenancy.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		if !seen[ev.ID] {
			seen[ev.ID] = true
			fmt.Println(ev.Type, ev.Data["organization_name"])
		}
		w.WriteHeader(http.StatusNoContent)
	})

	// What a Sender posts (here built by hand, and once forged).
	body := `{"id":"evt_6b1579c1791460a8bfacf8d1","seq":1,"type":"organization.created","org_id":"6b1579c1791460a8bfacf8d0","actor_id":null,"at":"2026-12-06T15:00:00.000Z","data":{"organization_name":"Acme"}}`
	key, _ := webhook.ParseSecret(secret)
	now := time.Now()
	for _, sig := range []string{webhook.Sign(key, "evt_6b1579c1791460a8bfacf8d1", now, []byte(body)), "v1,Zm9yZ2Vk"} {
		r := httptest.NewRequest(http.MethodPost, "/tenancy-events", strings.NewReader(body))
		r.Header.Set(webhook.HeaderID, "evt_6b1579c1791460a8bfacf8d1")
		r.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		r.Header.Set(webhook.HeaderSignature, sig)
		w := httptest.NewRecorder()
		receiver.ServeHTTP(w, r)
		fmt.Println(w.Code)
	}
	// Output:
	// organization.created Acme
	// 204
	// 401
}
