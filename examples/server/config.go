package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tenancy/tenancy"
	"github.com/tenancy/tenancy/httpapi"
	"github.com/tenancy/tenancy/webhook"
)

// embeddedTenantSuffix follows PRIMARY_DB in TENANT_DB's default on the
// embedded database.
const embeddedTenantSuffix = "_tenants"

// config is the server's configuration, read by loadConfig.
type config struct {
	mongoURI      string
	database      string
	tenantDB      string
	secret        []byte
	secretFromEnv bool
	previous      [][]byte
	edSeed        []byte // EdDSA: from ED25519_PRIVATE_KEY, or generated under DATA_DIR
	algorithm     string
	loginRate     float64
	proxies       []netip.Prefix
	tokenLifetime time.Duration
	bcryptCost    int
	logLevel      slog.Level
	addr          string
	dataDir       string
	renameByCopy  bool
	tenantQuota   int64
	dbTimeout     time.Duration
	maxConns      int
	cacheSize     int
	cacheStale    time.Duration // with MONGO_URI; 0: no cache there
	metricsAddr   string        // "": no metrics served
	webhookURL    string        // "": no webhooks
	webhookSecret string
	webhookFirst  time.Duration // the first retry's wait
	webhookMax    time.Duration // the longest wait between retries
}

func loadConfig(getenv func(string) string) (*config, error) {
	c := &config{
		mongoURI:  getenv("MONGO_URI"),
		database:  or(getenv("PRIMARY_DB"), "enterprise_db"),
		algorithm: or(getenv("ALGORITHM"), "HS256"),
		dataDir:   or(getenv("DATA_DIR"), "data"),
		addr:      getenv("ADDR"),
	}
	if c.addr == "" {
		c.addr = ":" + or(getenv("PORT"), "8000")
	}
	if _, port, err := net.SplitHostPort(c.addr); err != nil {
		return nil, fmt.Errorf("ADDR %q must be host:port", c.addr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return nil, fmt.Errorf("PORT %q must be a number from 0 to 65535", port)
	}
	if c.metricsAddr = getenv("METRICS_ADDR"); c.metricsAddr != "" {
		if _, port, err := net.SplitHostPort(c.metricsAddr); err != nil {
			return nil, fmt.Errorf("METRICS_ADDR %q must be host:port", c.metricsAddr)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return nil, fmt.Errorf("METRICS_ADDR %q: port must be a number from 0 to 65535", c.metricsAddr)
		}
	}
	if err := c.loadWebhook(getenv); err != nil {
		return nil, err
	}
	if !databaseName.MatchString(c.database) {
		return nil, fmt.Errorf("PRIMARY_DB %q must be 1 to 63 letters, digits, _ or -", c.database)
	}
	// On the embedded database every find costs in proportion to the
	// collections of its database, so the tenants get one of their own;
	// MongoDB keeps them beside the organizations, as the spec's data
	// model does.
	tenantDB := c.database
	if c.mongoURI == "" {
		tenantDB = c.database + embeddedTenantSuffix
	}
	c.tenantDB = or(getenv("TENANT_DB"), tenantDB)
	if !databaseName.MatchString(c.tenantDB) {
		return nil, fmt.Errorf("TENANT_DB %q must be 1 to 63 letters, digits, _ or - (it defaults to PRIMARY_DB, followed by %s on the embedded database)", c.tenantDB, embeddedTenantSuffix)
	}
	for _, load := range []func(func(string) string) error{c.loadKeys, c.loadClientLimits, c.loadTuning} {
		if err := load(getenv); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// loadKeys reads the signing algorithm's keys: SECRET_KEY and
// PREVIOUS_SECRET_KEYS, or ED25519_PRIVATE_KEY.
func (c *config) loadKeys(getenv func(string) string) error {
	if s := getenv("SECRET_KEY"); s != "" {
		if err := tenancy.CheckSigningSecret([]byte(s)); err != nil {
			return fmt.Errorf("SECRET_KEY: %w (or leave it unset to have one generated into DATA_DIR)", err)
		}
		c.secret, c.secretFromEnv = []byte(s), true
	}
	switch c.algorithm {
	case "HS256", "HS384", "HS512", "EdDSA":
	default:
		return fmt.Errorf("ALGORITHM %q is not supported; use HS256, HS384, HS512 or EdDSA", c.algorithm)
	}
	if s := getenv("PREVIOUS_SECRET_KEYS"); s != "" {
		for i, p := range strings.Split(s, ",") {
			p = strings.TrimSpace(p)
			if err := tenancy.CheckSigningSecret([]byte(p)); err != nil {
				return fmt.Errorf("PREVIOUS_SECRET_KEYS: key %d: %w", i+1, err)
			}
			c.previous = append(c.previous, []byte(p))
		}
	}
	if len(c.previous) > 0 && c.algorithm == "EdDSA" {
		return errors.New("PREVIOUS_SECRET_KEYS verify HS256, HS384 or HS512 tokens; ALGORITHM=EdDSA verifies with Ed25519 keys only: unset one of them")
	}
	if s := getenv("ED25519_PRIVATE_KEY"); s != "" {
		seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
		if err != nil || (len(seed) != ed25519.SeedSize && len(seed) != ed25519.PrivateKeySize) {
			return fmt.Errorf("ED25519_PRIVATE_KEY must be the base64 of a 32-byte Ed25519 seed (try: openssl rand -base64 32)")
		}
		c.edSeed = seed[:ed25519.SeedSize]
	}
	return nil
}

// loadClientLimits reads LOGIN_RATE_LIMIT and TRUSTED_PROXIES.
func (c *config) loadClientLimits(getenv func(string) string) (err error) {
	rateText := or(getenv("LOGIN_RATE_LIMIT"), strconv.Itoa(httpapi.DefaultLoginRate))
	// NaN passes every comparison as false: it is refused by name, or
	// it would switch the limit off.
	if c.loginRate, err = strconv.ParseFloat(rateText, 64); err != nil || math.IsNaN(c.loginRate) || math.IsInf(c.loginRate, 0) || c.loginRate < 0 {
		return fmt.Errorf("LOGIN_RATE_LIMIT %q must be a number of logins per second per client address, 0 or more (0 switches the limit off)", rateText)
	}
	if s := getenv("TRUSTED_PROXIES"); s != "" {
		for _, p := range strings.Split(s, ",") {
			prefix, err := netip.ParsePrefix(strings.TrimSpace(p))
			if err != nil {
				addr, aerr := netip.ParseAddr(strings.TrimSpace(p))
				if aerr != nil {
					return fmt.Errorf("TRUSTED_PROXIES: %q is not an address or a CIDR prefix", p)
				}
				prefix = netip.PrefixFrom(addr, addr.BitLen())
			}
			c.proxies = append(c.proxies, prefix)
		}
	}
	return nil
}

// loadTuning reads the limits and settings of the rest.
func (c *config) loadTuning(getenv func(string) string) error {
	minutes, err := strconv.Atoi(or(getenv("TOKEN_LIFETIME"), "60"))
	if err != nil || minutes <= 0 || minutes > maxTokenMinutes {
		return fmt.Errorf("TOKEN_LIFETIME %q must be a number of minutes from 1 to %d", getenv("TOKEN_LIFETIME"), maxTokenMinutes)
	}
	c.tokenLifetime = time.Duration(minutes) * time.Minute
	c.bcryptCost, err = strconv.Atoi(or(getenv("BCRYPT_COST"), strconv.Itoa(tenancy.DefaultBcryptCost)))
	if err != nil || c.bcryptCost < tenancy.MinBcryptCost || c.bcryptCost > tenancy.MaxBcryptCost {
		return fmt.Errorf("BCRYPT_COST %q must be a number from %d to %d (each step doubles the time of a login; %d takes about a second)",
			getenv("BCRYPT_COST"), tenancy.MinBcryptCost, tenancy.MaxBcryptCost, tenancy.MaxBcryptCost)
	}
	quotaText := or(getenv("TENANT_QUOTA"), "0")
	if c.tenantQuota, err = strconv.ParseInt(quotaText, 10, 64); err != nil || c.tenantQuota < 0 {
		return fmt.Errorf("TENANT_QUOTA %q must be a number of documents per organization (0 for no limit)", quotaText)
	}
	connText := or(getenv("MAX_CONNECTIONS"), strconv.Itoa(defaultMaxConnections))
	if c.maxConns, err = strconv.Atoi(connText); err != nil || c.maxConns < 16 || c.maxConns > 1_000_000 {
		return fmt.Errorf("MAX_CONNECTIONS %q must be a number of client connections from 16 to 1000000", connText)
	}
	dbText := or(getenv("DB_TIMEOUT"), "2")
	secs, err := strconv.Atoi(dbText)
	if err != nil || secs < 1 || secs > 60 {
		return fmt.Errorf("DB_TIMEOUT %q must be a number of seconds from 1 to 60", dbText)
	}
	c.dbTimeout = time.Duration(secs) * time.Second
	if err := c.loadCache(getenv); err != nil {
		return err
	}
	switch v := strings.ToLower(getenv("RENAME_BY_COPY")); v {
	case "", "false", "0":
	case "true", "1":
		c.renameByCopy = true
	default:
		return fmt.Errorf("RENAME_BY_COPY %q must be true or false", getenv("RENAME_BY_COPY"))
	}
	level := strings.ToUpper(or(getenv("LOG_LEVEL"), "INFO"))
	switch level { // Python's names, as the services this replaces use them
	case "WARNING":
		level = "WARN"
	case "CRITICAL", "FATAL":
		level = "ERROR"
	}
	if err := c.logLevel.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("LOG_LEVEL %q must be DEBUG, INFO, WARNING or ERROR", getenv("LOG_LEVEL"))
	}
	return nil
}

// recoveryInterval is how often the server settles the operations whose
// process died: one is settled within the operation lease and this.
const recoveryInterval = time.Second

// maxTokenMinutes bounds TOKEN_LIFETIME at one year.
const maxTokenMinutes = 366 * 24 * 60

// databaseName is the database names every supported server accepts.
var databaseName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,63}$`)

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// defaultCacheSize is CACHE_SIZE's default: records of each kind kept.
const defaultCacheSize = 10_000

// loadCache reads CACHE_SIZE and CACHE_MAX_STALE. On the embedded database
// this server is the only writer, so its cache is exact and on by default;
// with MONGO_URI other processes may write, and the cache is on only with
// the staleness bound CACHE_MAX_STALE.
func (c *config) loadCache(getenv func(string) string) (err error) {
	sizeText := or(getenv("CACHE_SIZE"), strconv.Itoa(defaultCacheSize))
	if c.cacheSize, err = strconv.Atoi(sizeText); err != nil || c.cacheSize < 0 || c.cacheSize > 10_000_000 {
		return fmt.Errorf("CACHE_SIZE %q must be a number of records from 0 (no cache) to 10000000", sizeText)
	}
	staleText := getenv("CACHE_MAX_STALE")
	if staleText == "" {
		return nil
	}
	if c.mongoURI == "" {
		return errors.New("CACHE_MAX_STALE applies with MONGO_URI: on the embedded database this server is the only writer, and its cache is exact")
	}
	if c.cacheStale, err = time.ParseDuration(staleText); err != nil || c.cacheStale <= 0 || c.cacheStale > time.Hour {
		return fmt.Errorf("CACHE_MAX_STALE %q must be a duration from 1ms to 1h, such as 2s: how late this server may see another process's rename, delete, password change or logout", staleText)
	}
	return nil
}

// loadWebhook reads WEBHOOK_URL, WEBHOOK_SECRET, WEBHOOK_RETRY_FIRST and
// WEBHOOK_RETRY_MAX.
func (c *config) loadWebhook(getenv func(string) string) error {
	c.webhookURL, c.webhookSecret = getenv("WEBHOOK_URL"), getenv("WEBHOOK_SECRET")
	switch {
	case c.webhookURL == "" && c.webhookSecret != "":
		return errors.New("WEBHOOK_SECRET is set without WEBHOOK_URL")
	case c.webhookURL == "":
		return nil
	case c.webhookSecret == "":
		return errors.New("WEBHOOK_URL needs WEBHOOK_SECRET: whsec_ and the base64 of 24 to 64 random bytes")
	}
	if _, err := webhook.NewSender(c.webhookURL, c.webhookSecret); err != nil {
		return fmt.Errorf("WEBHOOK_URL, WEBHOOK_SECRET: %w", err)
	}
	for _, d := range []struct {
		name string
		to   *time.Duration
		def  time.Duration
	}{
		{"WEBHOOK_RETRY_FIRST", &c.webhookFirst, tenancy.DefaultEventFirstRetry},
		{"WEBHOOK_RETRY_MAX", &c.webhookMax, tenancy.DefaultEventMaxRetry},
	} {
		*d.to = d.def
		if s := getenv(d.name); s != "" {
			v, err := time.ParseDuration(s)
			if err != nil || v < 10*time.Millisecond || v > 24*time.Hour {
				return fmt.Errorf("%s %q must be a duration from 10ms to 24h, such as 1s or 10m", d.name, s)
			}
			*d.to = v
		}
	}
	if c.webhookMax < c.webhookFirst {
		return fmt.Errorf("WEBHOOK_RETRY_MAX %v is shorter than WEBHOOK_RETRY_FIRST %v", c.webhookMax, c.webhookFirst)
	}
	return nil
}
