package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tenancy/tenancy"
)

// metrics are the server's Prometheus metrics, in a registry of their own
// (the embedded database registers its own in the default one), served on
// METRICS_ADDR.
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	logins     *prometheus.CounterVec
	hashWait   prometheus.Histogram
	operations *prometheus.CounterVec
	recovery   *prometheus.CounterVec
	webhooks   *prometheus.CounterVec
	webhookLag prometheus.Gauge
}

func newMetrics() *metrics {
	x := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenancy_http_requests_total", Help: "HTTP requests answered, by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tenancy_http_request_duration_seconds", Help: "Time to answer an HTTP request, by method and route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenancy_logins_total", Help: "Logins, by result: success, failure, throttled, overloaded.",
		}, []string{"result"}),
		hashWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tenancy_password_hash_wait_seconds", Help: "Time a bcrypt hash or comparison waited for a slot.",
			Buckets: []float64{0.0001, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenancy_operations_total", Help: "Operations that change an organization, by operation and result.",
		}, []string{"operation", "result"}),
		recovery: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenancy_recovery_settled_total", Help: "What recovery settled, by kind.",
		}, []string{"kind"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenancy_webhook_deliveries_total", Help: "Webhook deliveries of events, by result: success, failure (tried again), dropped (given up).",
		}, []string{"result"}),
		webhookLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tenancy_webhook_lag_seconds", Help: "Age of the event of the latest webhook delivery attempt: how far delivery is behind. It grows while a receiver fails.",
		}),
	}
	x.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		x.requests, x.duration, x.logins, x.hashWait, x.operations, x.recovery, x.webhooks, x.webhookLag)
	// The label values known in advance start at zero, so that a rate
	// or an alert sees them before their first event.
	for _, r := range []string{"success", "failure", "throttled", "overloaded"} {
		x.logins.WithLabelValues(r)
	}
	for _, r := range []string{"success", "failure", "dropped"} {
		x.webhooks.WithLabelValues(r)
	}
	for _, k := range []string{"create_rolled_back", "rename", "delete", "member_operation", "name_released", "expired"} {
		x.recovery.WithLabelValues(k)
	}
	return x
}

// hooks are the Manager's hooks that count into x.
func (x *metrics) hooks() tenancy.Hooks {
	return tenancy.Hooks{
		Login:            func(result string) { x.logins.WithLabelValues(result).Inc() },
		PasswordHashWait: func(d time.Duration) { x.hashWait.Observe(d.Seconds()) },
		Operation:        func(op, result string) { x.operations.WithLabelValues(op, result).Inc() },
		RecoverySettled:  func(kind string, n int) { x.recovery.WithLabelValues(kind).Add(float64(n)) },
		EventDelivery: func(result string, lag time.Duration) {
			x.webhooks.WithLabelValues(result).Inc()
			x.webhookLag.Set(lag.Seconds())
		},
	}
}

// request is the API's request hook.
func (x *metrics) request(r *http.Request, route string, status int, d time.Duration) {
	x.requests.WithLabelValues(r.Method, route, strconv.Itoa(status)).Inc()
	x.duration.WithLabelValues(r.Method, route).Observe(d.Seconds())
}

// serveMetrics serves x at /metrics on addr until ctx is done.
func serveMetrics(ctx context.Context, addr string, x *metrics, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("METRICS_ADDR: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(x.reg, promhttp.HandlerOpts{Registry: x.reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving Prometheus metrics", "addr", ln.Addr().String(), "path", "/metrics")
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}, nil
}
