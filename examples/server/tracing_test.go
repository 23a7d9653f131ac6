package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestTracing serves one request through the server's own stack (its
// embedded database, Manager and handler) with an in-memory span
// exporter: the request's span is named by its route and carries the
// request id, the Manager's operation is its child, and the database
// commands are the operation's.
func TestTracing(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tr := newTracingWith(sdktrace.WithSyncer(exp))
	env := map[string]string{"DATA_DIR": t.TempDir(), "BCRYPT_COST": "10"}
	cfg, err := loadConfig(func(k string) string { return env[k] })
	require.NoError(t, err)
	log := slog.New(slog.DiscardHandler)
	require.NoError(t, loadSigningKey(cfg, log))
	store, closeDB, err := openStore(t.Context(), cfg, log, tr)
	require.NoError(t, err)
	t.Cleanup(closeDB)
	m, err := newManager(cfg, store, log, nil, tr)
	require.NoError(t, err)
	h, err := newHandler(cfg, m, log, nil, tr)
	require.NoError(t, err)
	exp.Reset() // the start's own commands

	req := httptest.NewRequest("POST", "/org/create", bytes.NewReader([]byte(`{"organization_name":"Traced","email":"a@traced.com","password":"MySecurePassword123"}`)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	requestID := rec.Header().Get("X-Request-ID")
	require.NotEmpty(t, requestID)

	spans := exp.GetSpans()
	byName := map[string][]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = append(byName[s.Name], s)
	}
	require.Len(t, byName["POST /org/create"], 1, "the request's span, named by its route: %v", names(spans))
	request := byName["POST /org/create"][0]
	assert.Contains(t, request.Attributes, attribute.String("request.id", requestID))
	require.Len(t, byName["tenancy.create"], 1)
	op := byName["tenancy.create"][0]
	assert.Equal(t, request.SpanContext.SpanID(), op.Parent.SpanID(), "the operation is the request's child")
	assert.Contains(t, op.Attributes, attribute.String("request.id", requestID))
	inserts := 0
	for _, s := range spans {
		if s.Name == "mongodb.insert" {
			inserts++
			assert.True(t, descends(spans, s, op.SpanContext.SpanID()), "a database command of the operation")
			assert.Equal(t, trace.SpanKindClient, s.SpanKind)
		}
	}
	assert.GreaterOrEqual(t, inserts, 4, "the name, the record, the admin, the membership: %v", names(spans))
}

// descends reports whether s has the span id under it, through its
// parents among spans.
func descends(spans tracetest.SpanStubs, s tracetest.SpanStub, id trace.SpanID) bool {
	for range spans {
		if s.Parent.SpanID() == id {
			return true
		}
		found := false
		for _, p := range spans {
			if p.SpanContext.SpanID() == s.Parent.SpanID() {
				s, found = p, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return false
}

func names(spans tracetest.SpanStubs) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	return out
}
