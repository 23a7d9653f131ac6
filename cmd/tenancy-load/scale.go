package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// scaleConfig is the scale mode's flags.
type scaleConfig struct {
	orgs, docs, docSize, clients, pages int
	cost                                int
	timeout                             time.Duration // for the organizations, then again for the tenant
}

// runScale measures how the reference server's costs grow with the number
// of organizations and the size of a tenant, as a user runs it: it builds
// ./examples/server, starts it on its embedded database in a temporary
// directory, and speaks to it over loopback HTTP only.
func runScale(cfg scaleConfig) error {
	deadline := time.Now().Add(cfg.timeout)
	dir, err := os.MkdirTemp("", "tenancy-scale-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "server")
	log.Printf("building ./examples/server")
	if out, err := exec.Command("go", "build", "-o", bin, "./examples/server").CombinedOutput(); err != nil {
		return fmt.Errorf("build the server (run from the repository's root): %v\n%s", err, out)
	}
	srv, err := startServer(bin, dir, cfg)
	if err != nil {
		return err
	}
	defer srv.stop()
	c := &client{base: srv.base, hc: &http.Client{Timeout: 2 * time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}}

	small := min(100, cfg.orgs)
	log.Printf("creating %d organizations", small)
	if n := c.grow(0, small, cfg.clients, deadline); n < small {
		return fmt.Errorf("created only %d of %d organizations before the deadline", n, small)
	}
	atSmall, err := c.measureOrgs(small, 0)
	if err != nil {
		return err
	}
	log.Printf("creating organizations up to %d (with %d clients)", cfg.orgs, cfg.clients)
	start := time.Now()
	reached := c.grow(small, cfg.orgs, cfg.clients, deadline)
	grewIn := time.Since(start)
	if reached < cfg.orgs {
		log.Printf("the deadline came at %d organizations", reached)
	}
	atLarge, err := c.measureOrgs(reached, 1)
	if err != nil {
		return err
	}

	// What the organizations cost is printed now, whatever the tenant's
	// turn brings; the tenant gets a deadline of its own.
	fmt.Printf("organizations: %d made with %d clients in %v; p50 at %d → %d: GET %v → %v, login %v → %v, create %v → %v\n",
		reached, cfg.clients, grewIn.Round(time.Second), small, reached, atSmall.get.pct(50), atLarge.get.pct(50),
		atSmall.login.pct(50), atLarge.login.pct(50), atSmall.create.pct(50), atLarge.create.pct(50))
	deadline = time.Now().Add(cfg.timeout)
	tok, err := c.login(0)
	if err != nil {
		return err
	}
	fewDocs := min(100, cfg.docs)
	log.Printf("filling a tenant with %d documents of %d bytes", fewDocs, cfg.docSize)
	ids, err := c.fill(tok, nil, fewDocs, cfg.docSize, cfg.clients, deadline)
	if err != nil {
		return err
	}
	pageSmall, err := c.measurePages(tok, ids, cfg.pages)
	if err != nil {
		return err
	}
	log.Printf("filling the tenant up to %d documents", cfg.docs)
	if ids, err = c.fill(tok, ids, cfg.docs, cfg.docSize, cfg.clients, deadline); err != nil {
		return err
	}
	pageLarge, err := c.measurePages(tok, ids, cfg.pages)
	if err != nil {
		return err
	}
	log.Printf("16 concurrent page requests, sampling the server's RSS")
	rss, err := c.concurrentPages(srv, tok, ids, 16)
	if err != nil {
		return err
	}

	fmt.Printf("reference server on its embedded database (built from ./examples/server), bcrypt cost %d; %d organizations made with %d clients in %v\n\n",
		cfg.cost, reached, cfg.clients, grewIn.Round(time.Second))
	fmt.Printf("%-34s %12s %12s %12s %12s %8s\n", "", "p50 small", "p99 small", "p50 large", "p99 large", "ratio")
	row := func(name string, a, b latencies) float64 {
		r := float64(b.pct(50)) / float64(a.pct(50))
		fmt.Printf("%-34s %12v %12v %12v %12v %8.2f\n", name, a.pct(50), a.pct(99), b.pct(50), b.pct(99), r)
		return r
	}
	orgsLabel := fmt.Sprintf("(%d → %d organizations)", small, reached)
	getR := row("GET /org/get "+orgsLabel, atSmall.get, atLarge.get)
	loginR := row("POST /admin/login", atSmall.login, atLarge.login)
	createR := row("POST /org/create", atSmall.create, atLarge.create)
	pageR := row(fmt.Sprintf("page of 20 (%d → %d documents)", fewDocs, len(ids)), pageSmall, pageLarge)
	fmt.Printf("\n16 concurrent pages of 20 on %d × %d B documents: server RSS %.0f MiB before, peak %.0f MiB; answers %v\n",
		len(ids), cfg.docSize, float64(rss.before)/(1<<20), float64(rss.peak)/(1<<20), rss.statuses)
	fmt.Printf("\nbudgets:\n")
	verdict := func(ok bool) string { return map[bool]string{true: "met", false: "MISSED"}[ok] }
	fmt.Printf("  GET /org/get p50 ratio      %5.2f  (budget <= 1.5, %s)\n", getR, verdict(getR <= 1.5))
	fmt.Printf("  create p50 ratio            %5.2f  (budget <= 1.5, %s)\n", createR, verdict(createR <= 1.5))
	fmt.Printf("  login p50 ratio             %5.2f  (budget <= 1.2, %s)\n", loginR, verdict(loginR <= 1.2))
	fmt.Printf("  page p50 ratio              %5.2f  (budget <= 2, %s)\n", pageR, verdict(pageR <= 2))
	fmt.Printf("  peak RSS, 16 pages          %5.0f MiB  (budget <= 256 MiB, %s)\n", float64(rss.peak)/(1<<20), verdict(rss.peak <= 256<<20))
	return nil
}

// server is a running reference server.
type server struct {
	cmd  *exec.Cmd
	base string
	logs *os.File
}

func startServer(bin, dir string, cfg scaleConfig) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	secret := make([]byte, 48)
	_, _ = rand.Read(secret)
	logs, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"DATA_DIR=" + filepath.Join(dir, "data"), "ADDR=" + addr,
		"SECRET_KEY=" + base64.StdEncoding.EncodeToString(secret),
		"BCRYPT_COST=" + strconv.Itoa(cfg.cost),
		"LOGIN_RATE_LIMIT=0", // one client address makes every organization
		"LOG_LEVEL=ERROR",
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, base: "http://" + addr, logs: logs}
	for start := time.Now(); ; {
		res, err := http.Get(s.base + "/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Since(start) > time.Minute {
			s.stop()
			out, _ := os.ReadFile(logs.Name())
			return nil, fmt.Errorf("the server did not answer /health within a minute:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.logs.Close()
	// The server logs errors only (LOG_LEVEL=ERROR): show them before its
	// directory goes, so that a failed request can be traced by its id.
	if out, err := os.ReadFile(s.logs.Name()); err == nil && len(bytes.TrimSpace(out)) > 0 {
		log.Printf("the server logged:\n%s", out)
	}
}

// rss returns the server's resident set size from /proc.
func (s *server) rss() (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// client speaks to the server.
type client struct {
	base string
	hc   *http.Client
}

func (c *client) do(method, path, token string, body any, want int) (map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != want {
		return nil, fmt.Errorf("%s %s: status %d: %s", method, path, res.StatusCode, raw)
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out, nil
}

func orgName(i int) string  { return fmt.Sprintf("Scale Org %05d", i) }
func orgEmail(i int) string { return fmt.Sprintf("admin%05d@scale.test", i) }

const scalePassword = "MySecurePassword123"

func (c *client) create(name, email string) error {
	_, err := c.do("POST", "/org/create", "", map[string]string{"organization_name": name, "email": email, "password": scalePassword}, http.StatusCreated)
	return err
}

// grow creates organizations from to to with the given clients, and
// returns how many exist when it stops (at to, or at the deadline).
func (c *client) grow(from, to, clients int, deadline time.Time) int {
	var next atomic.Int64
	next.Store(int64(from))
	var made atomic.Int64
	made.Store(int64(from))
	var wg sync.WaitGroup
	var failures atomic.Int64
	lastLog := time.Now()
	var logMu sync.Mutex
	for range clients {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				if err := c.create(orgName(i), orgEmail(i)); err != nil {
					if failures.Add(1) <= 5 {
						log.Printf("create %d: %v", i, err)
					}
					continue
				}
				n := made.Add(1)
				logMu.Lock()
				if time.Since(lastLog) > 30*time.Second {
					lastLog = time.Now()
					log.Printf("%d organizations", n)
				}
				logMu.Unlock()
			}
		})
	}
	wg.Wait()
	return int(min(made.Load(), int64(to)))
}

// latencies are one operation's timings.
type latencies []time.Duration

func (l latencies) pct(p int) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(time.Microsecond)
}

type orgTimings struct{ get, login, create latencies }

// measureOrgs times, one request at a time, GETs and logins of
// organizations spread over all n (a scan would find the first ones fast)
// and creates of new ones.
func (c *client) measureOrgs(n, phase int) (orgTimings, error) {
	var t orgTimings
	for s := range 60 {
		k := (s*2503 + n - 1) % n
		start := time.Now()
		if _, err := c.do("GET", "/org/get?organization_name="+url.QueryEscape(orgName(k)), "", nil, http.StatusOK); err != nil {
			return t, err
		}
		t.get = append(t.get, time.Since(start))
		if s%2 == 0 {
			start = time.Now()
			if _, err := c.login(k); err != nil {
				return t, err
			}
			t.login = append(t.login, time.Since(start))
		}
		if s%3 == 0 {
			start = time.Now()
			if err := c.create(fmt.Sprintf("Scale Made %d %02d", phase, s), fmt.Sprintf("made%d-%02d@scale.test", phase, s)); err != nil {
				return t, err
			}
			t.create = append(t.create, time.Since(start))
		}
	}
	return t, nil
}

func (c *client) login(i int) (string, error) {
	out, err := c.do("POST", "/admin/login", "", map[string]string{"email": orgEmail(i), "password": scalePassword}, http.StatusOK)
	if err != nil {
		return "", err
	}
	tok, _ := out["access_token"].(string)
	return tok, nil
}

// fill inserts documents into the token's tenant until it holds n, and
// returns all their ids, sorted.
func (c *client) fill(token string, ids []string, n, size, clients int, deadline time.Time) ([]string, error) {
	pad := strings.Repeat("x", max(0, size-64))
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	var next atomic.Int64
	next.Store(int64(len(ids)))
	for range clients {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				out, err := c.do("POST", "/tenant/documents", token, map[string]any{"i": i, "pad": pad}, http.StatusCreated)
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				ids = append(ids, out["id"].(string))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if len(ids) < n {
		return nil, fmt.Errorf("inserted only %d of %d documents before the deadline", len(ids), n)
	}
	slices.Sort(ids)
	return ids, nil
}

// pagePath is a page of 20 starting at the k-th of samples positions
// spread over ids.
func pagePath(ids []string, k, samples int) string {
	i := (k*len(ids)/samples + len(ids) - 21) % (len(ids) - 20)
	if k == 0 {
		return "/tenant/documents?limit=20"
	}
	return "/tenant/documents?limit=20&after=" + ids[i]
}

// measurePages times, one at a time, pages of 20 starting at positions
// spread over the tenant.
func (c *client) measurePages(token string, ids []string, samples int) (latencies, error) {
	var l latencies
	for k := range samples {
		start := time.Now()
		out, err := c.do("GET", pagePath(ids, k, samples), token, nil, http.StatusOK)
		if err != nil {
			return nil, err
		}
		if docs, _ := out["documents"].([]any); len(docs) != 20 {
			return nil, fmt.Errorf("a page held %d documents, want 20", len(docs))
		}
		l = append(l, time.Since(start))
	}
	return l, nil
}

type rssResult struct {
	before, peak uint64
	statuses     map[int]int
}

// concurrentPages sends n page requests at once, at positions spread over
// the tenant, and samples the server's RSS until all are answered.
func (c *client) concurrentPages(srv *server, token string, ids []string, n int) (rssResult, error) {
	var r rssResult
	var err error
	if r.before, err = srv.rss(); err != nil {
		return r, err
	}
	r.peak = r.before
	ctx, cancel := context.WithCancel(context.Background())
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for ctx.Err() == nil {
			if v, err := srv.rss(); err == nil && v > r.peak {
				r.peak = v
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	r.statuses = map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for k := range n {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", c.base+pagePath(ids, k, n), nil)
			req.Header.Set("Authorization", "Bearer "+token)
			status := 0
			if res, err := c.hc.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				status = res.StatusCode
			}
			mu.Lock()
			r.statuses[status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	cancel()
	<-sampled
	return r, nil
}
