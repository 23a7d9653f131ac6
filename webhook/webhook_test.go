package webhook_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/webhook"
)

// The example of the Standard Webhooks specification's reference
// libraries.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func specHeaders(sig string) http.Header {
	h := http.Header{}
	h.Set(webhook.HeaderID, specID)
	h.Set(webhook.HeaderTimestamp, "1614265330")
	h.Set(webhook.HeaderSignature, sig)
	return h
}

func TestSignMatchesTheSpecification(t *testing.T) {
	key, err := webhook.ParseSecret(specSecret)
	require.NoError(t, err)
	assert.Equal(t, specSignature, webhook.Sign(key, specID, time.Unix(specTimestamp, 0), []byte(specBody)))
}

func TestVerify(t *testing.T) {
	at := time.Unix(specTimestamp, 0)
	verify := func(h http.Header, body string, now time.Time) error {
		return webhook.VerifyAt(specSecret, h, []byte(body), now, webhook.DefaultTolerance)
	}
	assert.NoError(t, verify(specHeaders(specSignature), specBody, at))
	assert.NoError(t, verify(specHeaders("v1,bm90IGl0 "+specSignature), specBody, at), "one of several signatures")
	assert.NoError(t, verify(specHeaders(specSignature), specBody, at.Add(4*time.Minute)), "within the tolerance")
	assert.ErrorIs(t, verify(specHeaders(specSignature), specBody+" ", at), webhook.ErrNoMatchingSignature, "a changed body")
	assert.ErrorIs(t, verify(specHeaders("v2,"+specSignature[3:]), specBody, at), webhook.ErrNoMatchingSignature, "another scheme")
	assert.ErrorIs(t, verify(specHeaders(specSignature), specBody, at.Add(6*time.Minute)), webhook.ErrBadTimestamp, "replayed later")
	assert.ErrorIs(t, verify(specHeaders(specSignature), specBody, at.Add(-6*time.Minute)), webhook.ErrBadTimestamp, "from the future")
	h := specHeaders(specSignature)
	h.Set(webhook.HeaderID, "msg_other")
	assert.ErrorIs(t, verify(h, specBody, at), webhook.ErrNoMatchingSignature, "another id")
	h = specHeaders(specSignature)
	h.Del(webhook.HeaderSignature)
	assert.ErrorIs(t, verify(h, specBody, at), webhook.ErrMissingHeaders)
	h = specHeaders(specSignature)
	h.Set(webhook.HeaderTimestamp, "soon")
	assert.ErrorIs(t, verify(h, specBody, at), webhook.ErrBadTimestamp)
	assert.Error(t, webhook.VerifyAt(webhook.NewSecret(), specHeaders(specSignature), []byte(specBody), at, time.Minute), "another secret")
}

func TestParseSecret(t *testing.T) {
	_, err := webhook.ParseSecret("whsec_c2hvcnQ=")
	assert.ErrorContains(t, err, "at least 24")
	_, err = webhook.ParseSecret("whsec_not base64!")
	assert.ErrorContains(t, err, "base64")
	key, err := webhook.ParseSecret(webhook.NewSecret())
	require.NoError(t, err)
	assert.Len(t, key, 32)
}

func TestSenderDelivers(t *testing.T) {
	secret := webhook.NewSecret()
	var got []*tenancy.Event
	status := http.StatusNoContent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		if err := webhook.Verify(secret, r.Header, body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var ev tenancy.Event
		require.NoError(t, json.Unmarshal(body, &ev))
		assert.Equal(t, r.Header.Get(webhook.HeaderID), ev.ID, "webhook-id is the event id")
		got = append(got, &ev)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	s, err := webhook.NewSender(srv.URL, secret)
	require.NoError(t, err)
	ev := &tenancy.Event{ID: "evt_1", Seq: 3, Type: tenancy.EventOrgCreated, OrgID: "o1", At: time.Now().UTC().Truncate(time.Millisecond),
		Data: map[string]any{"organization_name": "Acme"}}
	require.NoError(t, s.Deliver(t.Context(), ev))
	require.Len(t, got, 1)
	assert.Equal(t, ev.ID, got[0].ID)
	assert.Equal(t, int64(3), got[0].Seq)
	assert.Equal(t, "Acme", got[0].Data["organization_name"])
	assert.Empty(t, got[0].ActorID, "actor_id null")
	assert.True(t, ev.At.Equal(got[0].At))

	status = http.StatusInternalServerError
	err = s.Deliver(t.Context(), ev)
	var se *webhook.StatusError
	require.True(t, errors.As(err, &se), "a 5xx fails the delivery: %v", err)
	assert.Equal(t, http.StatusInternalServerError, se.Status)

	wrong, err := webhook.NewSender(srv.URL, webhook.NewSecret())
	require.NoError(t, err)
	require.True(t, errors.As(wrong.Deliver(t.Context(), ev), &se), "the receiver refuses another secret")
	assert.Equal(t, http.StatusUnauthorized, se.Status)
}

func TestSenderDoesNotFollowRedirects(t *testing.T) {
	hits := 0
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer target.Close()
	redirect := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer redirect.Close()
	s, err := webhook.NewSender(redirect.URL, webhook.NewSecret())
	require.NoError(t, err)
	var se *webhook.StatusError
	require.True(t, errors.As(s.Deliver(t.Context(), &tenancy.Event{ID: "evt_2"}), &se))
	assert.Equal(t, http.StatusTemporaryRedirect, se.Status)
	assert.Zero(t, hits, "the redirect is not followed")
}

func TestNewSenderRefusesBadInput(t *testing.T) {
	_, err := webhook.NewSender("ftp://example.com/hook", webhook.NewSecret())
	assert.ErrorContains(t, err, "http or https")
	_, err = webhook.NewSender("/relative", webhook.NewSecret())
	assert.Error(t, err)
	_, err = webhook.NewSender("http://127.0.0.1/hook", "whsec_short")
	assert.Error(t, err)
}

func TestDeliverErrorsHideTheURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	url := srv.URL + "/hook?token=s3cret"
	srv.Close() // nothing listens any more
	s, err := webhook.NewSender(url, webhook.NewSecret())
	require.NoError(t, err)
	err = s.Deliver(t.Context(), &tenancy.Event{ID: "evt_3"})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cret", "the error, which gets logged, does not carry the URL's query")
}
