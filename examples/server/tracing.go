package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/httpapi"
)

// tracing exports OpenTelemetry traces: a span per request (named by its
// route), a child span per Manager operation, and one per database
// command below those. It is on when the standard
// OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is
// set, with the other OTEL_* variables; otherwise the server builds none
// of it.
type tracing struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
}

// newTracing returns the tracing the environment asks for, or nil.
func newTracing(ctx context.Context, getenv func(string) string) (*tracing, error) {
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	exp, err := otlptracehttp.New(ctx) // configured by the OTEL_* variables
	if err != nil {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %w", err)
	}
	return newTracingWith(sdktrace.WithBatcher(exp)), nil
}

// newTracingWith returns tracing over a tracer provider with opts (an
// exporter).
func newTracingWith(opts ...sdktrace.TracerProviderOption) *tracing {
	tp := sdktrace.NewTracerProvider(opts...)
	return &tracing{tp: tp, tracer: tp.Tracer("github.com/tenancy/tenancy")}
}

// shutdown flushes the spans not exported yet.
func (tr *tracing) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = tr.tp.Shutdown(ctx)
}

// handler starts the span of each request; request names it once the
// API has routed it.
func (tr *tracing) handler(next http.Handler) http.Handler {
	return otelhttp.NewHandler(next, "request", otelhttp.WithTracerProvider(tr.tp))
}

// request is the API's request hook: the request's span is named by its
// route, never its raw path, and carries the request id.
func (tr *tracing) request(r *http.Request, route string, _ int, _ time.Duration) {
	span := trace.SpanFromContext(r.Context())
	span.SetName(r.Method + " " + route)
	span.SetAttributes(attribute.String("http.route", route), attribute.String("request.id", httpapi.RequestID(r.Context())))
}

// trace is the Manager's Trace hook: a span per operation.
func (tr *tracing) trace(ctx context.Context, operation string) (context.Context, func(error)) {
	ctx, span := tr.tracer.Start(ctx, "tenancy."+operation)
	if id := httpapi.RequestID(ctx); id != "" {
		span.SetAttributes(attribute.String("request.id", id))
	}
	return ctx, func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// hooks adds the tracing hook to h.
func (tr *tracing) hooks(h tenancy.Hooks) tenancy.Hooks {
	h.Trace = tr.trace
	return h
}

// monitor is the driver's command monitor: a span per database command,
// a child of the span of the context the command runs in.
func (tr *tracing) monitor() *event.CommandMonitor {
	var spans sync.Map // request id of the command → trace.Span
	end := func(id int64, err error) {
		if s, ok := spans.LoadAndDelete(id); ok {
			span := s.(trace.Span)
			if err != nil {
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}
	}
	return &event.CommandMonitor{
		Started: func(ctx context.Context, e *event.CommandStartedEvent) {
			_, span := tr.tracer.Start(ctx, "mongodb."+e.CommandName, trace.WithSpanKind(trace.SpanKindClient),
				trace.WithAttributes(attribute.String("db.system", "mongodb"), attribute.String("db.name", e.DatabaseName),
					attribute.String("db.operation", e.CommandName)))
			spans.Store(e.RequestID, span)
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) { end(e.RequestID, nil) },
		Failed:    func(_ context.Context, e *event.CommandFailedEvent) { end(e.RequestID, e.Failure) },
	}
}
