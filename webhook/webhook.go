// Package webhook delivers tenancy events over HTTP as Standard Webhooks
// (https://www.standardwebhooks.com), and verifies them on the receiving
// side.
//
// Each event is POSTed as JSON (see tenancy.Event.MarshalJSON) with the
// headers webhook-id (the event id: a receiver drops repeats by it),
// webhook-timestamp (Unix seconds) and webhook-signature ("v1," and the
// base64 HMAC-SHA256, keyed by the secret, of "<id>.<timestamp>.<body>").
// Secrets are written "whsec_" and base64, as the specification has it.
//
// A Sender is a tenancy.EventSink: give it to tenancy.WithEventDelivery
// and run Manager.DeliverEvents. A receiver calls Verify.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tenancy/tenancy"
)

// Header names of the Standard Webhooks specification.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix starts every secret's text form.
const secretPrefix = "whsec_"

// MinSecretBytes is the shortest secret accepted: 24 bytes (192 bits),
// the least the specification asks for.
const MinSecretBytes = 24

// DefaultTolerance is how far a webhook-timestamp may be from now for
// Verify: older or newer messages are refused, so that a captured one
// cannot be replayed later.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify.
var (
	ErrMissingHeaders      = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature header")
	ErrBadTimestamp        = errors.New("webhook: timestamp missing, malformed or outside the tolerance")
	ErrNoMatchingSignature = errors.New("webhook: no matching signature")
)

// NewSecret returns a new random secret in its text form, "whsec_" and
// the base64 of 32 bytes.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return secretPrefix + base64.StdEncoding.EncodeToString(b)
}

// ParseSecret returns the key of a secret written "whsec_<base64>" (the
// prefix may be left out) of at least MinSecretBytes bytes.
func ParseSecret(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, secretPrefix))
	if err != nil {
		return nil, errors.New(`webhook: the secret must be "whsec_" followed by base64`)
	}
	if len(key) < MinSecretBytes {
		return nil, fmt.Errorf("webhook: the secret has %d bytes; at least %d are needed", len(key), MinSecretBytes)
	}
	return key, nil
}

// Sign returns the webhook-signature value of a message: "v1," and the
// base64 HMAC-SHA256 of "<id>.<timestamp>.<body>" under key.
func Sign(key []byte, id string, timestamp time.Time, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(timestamp.Unix(), 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Verify checks a received webhook: its headers carry a signature of
// body by secret (the text form, "whsec_..."), and a timestamp within
// DefaultTolerance of now. It returns nil if the message is authentic;
// read the body in full, unchanged, before calling it.
func Verify(secret string, h http.Header, body []byte) error {
	return VerifyAt(secret, h, body, time.Now(), DefaultTolerance)
}

// VerifyAt is Verify at the time now, with tolerance.
func VerifyAt(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := ParseSecret(secret)
	if err != nil {
		return err
	}
	id, ts, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || ts == "" || sigs == "" {
		return ErrMissingHeaders
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrBadTimestamp
	}
	at := time.Unix(sec, 0)
	if at.Before(now.Add(-tolerance)) || at.After(now.Add(tolerance)) {
		return ErrBadTimestamp
	}
	want := []byte(Sign(key, id, at, body))
	for _, sig := range strings.Fields(sigs) {
		if hmac.Equal([]byte(sig), want) {
			return nil
		}
	}
	return ErrNoMatchingSignature
}

// Sender POSTs events to one URL, signed. It is a tenancy.EventSink.
type Sender struct {
	url    string
	key    []byte
	client *http.Client
	now    func() time.Time
}

// Option configures a Sender.
type Option func(*Sender)

// WithClient makes the Sender use c (its redirects are not followed:
// a 3xx answer is a failed delivery).
func WithClient(c *http.Client) Option { return func(s *Sender) { s.client = c } }

// NewSender returns a Sender to rawURL (http or https) signing with
// secret ("whsec_<base64>").
func NewSender(rawURL, secret string, opts ...Option) (*Sender, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook: the URL %q must be absolute, http or https", rawURL)
	}
	key, err := ParseSecret(secret)
	if err != nil {
		return nil, err
	}
	s := &Sender{url: u.String(), key: key, client: &http.Client{}, now: time.Now}
	for _, opt := range opts {
		opt(s)
	}
	c := *s.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s.client = &c
	return s, nil
}

// StatusError is a delivery the receiver answered with a status other
// than 2xx.
type StatusError struct{ Status int }

func (e *StatusError) Error() string {
	return fmt.Sprintf("webhook: the receiver answered %d %s", e.Status, http.StatusText(e.Status))
}

// Deliver POSTs ev, signed, and returns nil if the receiver answered
// 2xx. It implements tenancy.EventSink.
func (s *Sender) Deliver(ctx context.Context, ev *tenancy.Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("webhook: encode event %s: %w", ev.ID, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	now := s.now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tenancy-webhook/1")
	req.Header.Set(HeaderID, ev.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(s.key, ev.ID, now, body))
	resp, err := s.client.Do(req)
	if err != nil {
		// Not the *url.Error itself: it names the URL, whose query or
		// user information may hold credentials, and errors get logged.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("webhook: deliver event %s: %w", ev.ID, err)
	}
	// Drain a little, so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook: deliver event %s: %w", ev.ID, &StatusError{Status: resp.StatusCode})
	}
	return nil
}
