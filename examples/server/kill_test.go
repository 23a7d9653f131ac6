package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenancy/tenancy"
)

// killCase is one operation that a SIGKILL interrupted.
type killCase struct {
	kind     string // "create", "rename", "rename-copy" or "delete"
	name     string // the organization's name before the operation
	newName  string // a rename's target
	email    string
	orgID    string // empty for a create
	docs     int    // tenant documents besides the metadata document
	token    string // a token issued before the operation
	delay    time.Duration
	outcome  string // "whole" or "absent", once checked
	identity string // the identifier the whole org ended with
}

const (
	killPassword = "KillTestPassword123"
	killDocs     = 3000
)

// TestKillAndRestart SIGKILLs the real server at random moments during
// creates, renames (by renameCollection and by copying) and deletes,
// restarts it at once on the same database each time, as a supervisor
// would, and then, with no further request to the organizations involved,
// checks the database directly: within 30 s every organization is whole
// (one name, one tenant collection holding every document, its admin) or
// wholly absent (no record, name, collection or admin). Then the API must
// give the same answer through GET, login and the tokens issued before.
func TestKillAndRestart(t *testing.T) {
	bin := buildServer(t)
	uri := startDatabase(t)
	const dbName = "killtest"
	db := connectDatabase(t, uri, dbName)

	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	dataDir := t.TempDir()
	env := func(kind string) []string {
		e := []string{"MONGO_URI=" + uri, "PRIMARY_DB=" + dbName, "SECRET_KEY=" + hex.EncodeToString(secret),
			"LOG_LEVEL=INFO", "LOGIN_RATE_LIMIT=0"}
		if kind == "rename-copy" {
			e = append(e, "RENAME_BY_COPY=true")
		}
		return e
	}

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, seed))
	var kinds []string
	for range 9 {
		kinds = append(kinds, "create", "rename", "rename-copy", "delete")
	}
	rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })

	srv := startServer(t, bin, dataDir, "", env(kinds[0])...)
	// How long each kind of operation takes uninterrupted, so that kills
	// land anywhere from before its first step to after its last.
	took := map[string]time.Duration{}
	for _, kind := range []string{"create", "rename", "rename-copy", "delete"} {
		if kind == "rename-copy" {
			srv = restartServer(t, srv, bin, dataDir, env(kind))
		}
		c := prepareKillCase(t, srv, db, kind, "calibrate-"+kind)
		start := time.Now()
		status := runKillCase(srv, c)
		took[kind] = time.Since(start)
		require.Less(t, status, 300, "uninterrupted %s", kind)
	}
	t.Logf("uninterrupted: %v", took)

	var cases []*killCase
	srv = restartServer(t, srv, bin, dataDir, env(kinds[0]))
	for i, kind := range kinds {
		c := prepareKillCase(t, srv, db, kind, fmt.Sprintf("k%02d", i))
		c.delay = time.Duration(rng.Int64N(int64(took[kind] * 11 / 10)))
		done := make(chan struct{})
		go func() { runKillCase(srv, c); close(done) }()
		time.Sleep(c.delay)
		next := "create"
		if i+1 < len(kinds) {
			next = kinds[i+1]
		}
		srv = restartServer(t, srv, bin, dataDir, env(next))
		<-done
		cases = append(cases, c)
	}
	t.Logf("%d kills: %d creates, %d renames, %d copying renames, %d deletes", len(cases),
		count(kinds, "create"), count(kinds, "rename"), count(kinds, "rename-copy"), count(kinds, "delete"))

	// No request reaches these organizations now: the server must settle
	// them by itself. Until the journal is empty and no organization is
	// mid-operation, look cheaply, so as not to load the database the
	// server is recovering on.
	restarted := time.Now()
	for time.Since(restarted) < 30*time.Second {
		pending, err := db.Collection("org_operations").CountDocuments(t.Context(), bson.D{})
		require.NoError(t, err)
		unfinished, err := db.Collection("org_registry").CountDocuments(t.Context(),
			bson.D{{Key: "state", Value: bson.D{{Key: "$ne", Value: "active"}}}})
		require.NoError(t, err)
		if pending == 0 && unfinished == 0 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	var problems []string
	for {
		problems = problems[:0]
		for _, c := range cases {
			if p := checkKillCase(t, db, c); p != "" {
				problems = append(problems, p)
			}
		}
		n, err := db.Collection("org_operations").CountDocuments(t.Context(), bson.D{})
		require.NoError(t, err)
		if n > 0 {
			problems = append(problems, fmt.Sprintf("%d operations still in the journal", n))
		}
		if len(problems) == 0 || time.Since(restarted) > 30*time.Second {
			break
		}
		time.Sleep(2 * time.Second)
	}
	settled := time.Since(restarted)
	for _, p := range problems {
		t.Error(p)
	}
	outcomes := map[string]int{}
	for _, c := range cases {
		switch {
		case c.outcome == "whole" && c.newName != "" && c.identity == mustIdentifier(t, c.newName):
			outcomes[c.kind+" completed"]++
		case c.outcome == "whole" && c.kind == "delete":
			outcomes["delete not begun"]++
		case c.outcome == "whole" && c.kind != "create":
			outcomes[c.kind+" rolled back"]++
		default:
			outcomes[c.kind+" "+c.outcome]++
		}
	}
	if len(problems) > 0 {
		t.Fatalf("%d problems 30s after the last restart (%d organizations)", len(problems), len(cases))
	}

	// The API agrees with the database.
	for _, c := range cases {
		checkKillCaseAPI(t, srv, c)
	}
	t.Logf("kill test: %d kills, every organization whole or absent %v after the last restart; outcomes %v",
		len(cases), settled.Round(100*time.Millisecond), outcomes)
}

// startDatabase runs the embedded FerretDB in a process of its own, built
// without the race detector as the server is, so that it outlives the
// servers the test kills and runs at the speed a user's database would.
func startDatabase(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "serve")
	out, err := exec.Command("go", "build", "-o", bin, "../../internal/embeddb/serve").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	cmd := exec.Command(bin, t.TempDir())
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("database process: %v", err)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "the database's connection string")
	return strings.TrimSpace(line)
}

// connectDatabase returns the database name on uri, through a client
// the test closes at its end: to look at what the server left.
func connectDatabase(t *testing.T, uri, name string) *mongo.Database {
	t.Helper()
	mc, err := mongo.Connect(options.Client().ApplyURI(uri))
	require.NoError(t, err)
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	return mc.Database(name)
}

func count(s []string, v string) (n int) {
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// restartServer SIGKILLs srv and starts the server again at once.
func restartServer(t *testing.T, srv *server, bin, dataDir string, env []string) *server {
	t.Helper()
	require.NoError(t, srv.cmd.Process.Kill())
	err := <-srv.done
	srv.done <- err // for the cleanup
	return startServer(t, bin, dataDir, "", env...)
}

// prepareKillCase sets up an organization for kind: nothing for a
// create, an organization with killDocs tenant documents otherwise.
func prepareKillCase(t *testing.T, srv *server, db *mongo.Database, kind, prefix string) *killCase {
	t.Helper()
	c := &killCase{kind: kind, name: prefix + " Crash Org", email: strings.ToLower(prefix) + "@crash.test"}
	if kind == "create" {
		return c
	}
	c.newName = prefix + " Crash Renamed"
	status, body := srv.do(t, http.MethodPost, "/org/create", "", map[string]any{
		"organization_name": c.name, "email": c.email, "password": killPassword})
	require.Equal(t, http.StatusCreated, status, "%v", body)
	c.orgID = body["id"].(string)
	coll := db.Collection(body["tenant_collection"].(string))
	docs := make([]any, killDocs)
	for i := range docs {
		docs[i] = bson.D{{Key: "i", Value: i}, {Key: "pad", Value: strings.Repeat("x", 64)}}
	}
	_, err := coll.InsertMany(t.Context(), docs)
	require.NoError(t, err)
	c.docs = killDocs
	status, body = srv.do(t, http.MethodPost, "/admin/login", "", map[string]any{"email": c.email, "password": killPassword})
	require.Equal(t, http.StatusOK, status, "%v", body)
	c.token = body["access_token"].(string)
	return c
}

// runKillCase sends c's operation and returns its status, or 0 if the
// server died first.
func runKillCase(srv *server, c *killCase) int {
	var method, path, token string
	var body map[string]any
	switch c.kind {
	case "create":
		method, path = http.MethodPost, "/org/create"
		body = map[string]any{"organization_name": c.name, "email": c.email, "password": killPassword}
	case "rename", "rename-copy":
		method, path, token = http.MethodPut, "/org/update", c.token
		body = map[string]any{"organization_name": c.newName, "email": c.email, "password": killPassword}
	case "delete":
		method, path, token = http.MethodDelete, "/org/delete", c.token
		body = map[string]any{"organization_name": c.name}
	}
	status, _, err := request(srv.base, method, path, token, body)
	if err != nil {
		return 0
	}
	return status
}

// checkKillCase inspects the database for c and returns what is wrong, or
// "" if the organization is whole or wholly absent (as its kind allows).
func checkKillCase(t *testing.T, db *mongo.Database, c *killCase) string {
	t.Helper()
	ctx := t.Context()
	idents := []string{mustIdentifier(t, c.name)}
	if c.newName != "" {
		idents = append(idents, mustIdentifier(t, c.newName))
	}
	var orgs []bson.M
	filter := bson.D{{Key: "identifier", Value: bson.D{{Key: "$in", Value: idents}}}}
	if c.orgID != "" {
		oid, _ := bson.ObjectIDFromHex(c.orgID)
		filter = bson.D{{Key: "$or", Value: bson.A{filter, bson.D{{Key: "_id", Value: oid}}}}}
	}
	cur, err := db.Collection("org_registry").Find(ctx, filter)
	require.NoError(t, err)
	require.NoError(t, cur.All(ctx, &orgs))
	names := map[string]bson.ObjectID{}
	for _, id := range idents {
		var n bson.M
		if err := db.Collection("org_names").FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&n); err == nil {
			names[id] = n["org_id"].(bson.ObjectID)
		}
	}
	colls, err := db.ListCollectionNames(ctx, bson.D{})
	require.NoError(t, err)
	present := map[string]bool{}
	for _, n := range colls {
		present[n] = true
	}
	var admin bson.M
	adminErr := db.Collection("admin_accounts").FindOne(ctx, bson.D{{Key: "email", Value: c.email}}).Decode(&admin)

	where := fmt.Sprintf("%s %q (killed after %v)", c.kind, c.name, c.delay.Round(time.Millisecond))
	if len(orgs) == 0 {
		var left []string
		for id := range names {
			left = append(left, "name "+id)
		}
		for _, id := range idents {
			if present[tenancy.TenantCollection(id)] {
				left = append(left, "collection "+tenancy.TenantCollection(id))
			}
		}
		if adminErr == nil {
			left = append(left, "admin "+c.email)
		}
		switch {
		case c.kind == "rename" || c.kind == "rename-copy":
			return where + ": the organization is gone"
		case len(left) > 0:
			return fmt.Sprintf("%s: no organization, but %v remain", where, left)
		}
		c.outcome = "absent"
		return ""
	}
	if len(orgs) > 1 {
		return fmt.Sprintf("%s: %d organization records", where, len(orgs))
	}
	o := orgs[0]
	id := o["identifier"].(string)
	oid := o["_id"].(bson.ObjectID)
	switch {
	case o["state"] != "active":
		return fmt.Sprintf("%s: state %v", where, o["state"])
	case o["pending"] != nil:
		return fmt.Sprintf("%s: a rename is still pending: %v", where, o["pending"])
	case o["tenant_collection"] != tenancy.TenantCollection(id):
		return fmt.Sprintf("%s: collection %v for identifier %s", where, o["tenant_collection"], id)
	case names[id] != oid:
		return fmt.Sprintf("%s: its name %s is not reserved for it", where, id)
	case adminErr != nil:
		return fmt.Sprintf("%s: no admin: %v", where, adminErr)
	case admin["organization_id"] != oid:
		return fmt.Sprintf("%s: the admin belongs to %v", where, admin["organization_id"])
	}
	for _, other := range idents {
		if other == id {
			continue
		}
		if _, ok := names[other]; ok {
			return fmt.Sprintf("%s: the unused name %s is still reserved", where, other)
		}
		if present[tenancy.TenantCollection(other)] {
			return fmt.Sprintf("%s: a collection is left under the unused name %s", where, other)
		}
	}
	coll := db.Collection(tenancy.TenantCollection(id))
	n, err := coll.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	if n != int64(c.docs+1) {
		return fmt.Sprintf("%s: %s holds %d documents, want %d", where, coll.Name(), n, c.docs+1)
	}
	var md bson.M
	if err := coll.FindOne(ctx, bson.D{{Key: "metadata.org_id", Value: bson.D{{Key: "$exists", Value: true}}}}).Decode(&md); err != nil {
		return fmt.Sprintf("%s: %s has no metadata document", where, coll.Name())
	}
	c.outcome, c.identity, c.orgID = "whole", id, oid.Hex()
	return ""
}

// checkKillCaseAPI checks that GET, login and the earlier token agree
// with what the database holds for c.
func checkKillCaseAPI(t *testing.T, srv *server, c *killCase) {
	t.Helper()
	names := []string{c.name}
	if c.newName != "" {
		names = append(names, c.newName)
	}
	for _, name := range names {
		status, body, err := request(srv.base, http.MethodGet, "/org/get?organization_name="+url.QueryEscape(name), "", nil)
		require.NoError(t, err)
		if c.outcome == "whole" && mustIdentifier(t, name) == c.identity {
			if assert.Equal(t, http.StatusOK, status, "%s %q: GET %q", c.kind, c.name, name) {
				assert.Equal(t, tenancy.TenantCollection(c.identity), body["tenant_collection"])
				assert.Equal(t, c.orgID, body["id"])
			}
		} else {
			assert.Equal(t, http.StatusNotFound, status, "%s %q: GET %q", c.kind, c.name, name)
		}
	}
	status, body, err := request(srv.base, http.MethodPost, "/admin/login", "", map[string]any{"email": c.email, "password": killPassword})
	require.NoError(t, err)
	if c.outcome == "whole" {
		assert.Equal(t, http.StatusOK, status, "%s %q: login", c.kind, c.name)
		assert.Equal(t, c.orgID, body["org_id"])
	} else {
		assert.Equal(t, http.StatusUnauthorized, status, "%s %q: login", c.kind, c.name)
	}
	if c.token == "" {
		return
	}
	status, body, err = request(srv.base, http.MethodGet, "/tenant/documents?limit=1", c.token, nil)
	require.NoError(t, err)
	if c.outcome == "whole" {
		if assert.Equal(t, http.StatusOK, status, "%s %q: the earlier token", c.kind, c.name) {
			assert.Len(t, body["documents"], 1)
		}
	} else {
		assert.Equal(t, http.StatusUnauthorized, status, "%s %q: the earlier token", c.kind, c.name)
	}
}

func mustIdentifier(t *testing.T, name string) string {
	t.Helper()
	id, err := tenancy.Identifier(name)
	require.NoError(t, err)
	return id
}

// request sends one API request; it is safe to call from any goroutine.
func request(base, method, path, token string, body any) (int, map[string]any, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return 0, nil, err
	}
	return res.StatusCode, out, nil
}
