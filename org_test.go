package tenancy_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenancy/tenancy"
)

func TestIdentifier(t *testing.T) {
	tests := []struct {
		name, want string
	}{
		{"Tech Innovations Corp", "tech-innovations-corp"},
		{"Tech Innovations Corp 2.0", "tech-innovations-corp-2-0"},
		{"  TECH   innovations, corp!! ", "tech-innovations-corp"},
		{"tech-innovations-corp", "tech-innovations-corp"},
		{"tech_innovations_corp", "tech-innovations-corp"},
		{"Acme Corporation", "acme-corporation"},
		{"StartUp Labs 2.0", "startup-labs-2-0"},
		{"Ｆｕｌｌｗｉｄｔｈ Ｃｏ", "fullwidth-co"}, // NFKC folds width
		{"Café", "café"},                 // composed é
		{"Cafe\u0301", "café"},           // decomposed é composes
		{"STRASSE", "strasse"},           //
		{"Straße", "strasse"},            // full case folding
		{"ΣΟΦΙΑ", "σοφια"},               //
		{"σοφιας", "σοφιασ"},             // final sigma folds
		{"東京テック", "東京テック"},               // CJK kept
		{"شركة التقنية", "شركة-التقنية"}, // Arabic kept
		{"हिन्दी कंपनी", "हिन्दी-कंपनी"},                     // combining marks kept
		{"Zero\u200bWidth", "zerowidth"},                     // format characters dropped
		{"a\u00adb", "ab"},                                   // soft hyphen dropped
		{"$where: {\"$ne\": null}", "where-ne-null"},         // operators are just text
		{"../../etc/passwd", "etc-passwd"},                   //
		{"system.profile", "system-profile"},                 //
		{"x²", "x2"},                                         // superscripts fold to digits
		{strings.Repeat("a", 100), strings.Repeat("a", 100)}, // longest name
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tenancy.Identifier(tt.name)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestIdentifierRefused(t *testing.T) {
	tests := []struct {
		desc, name, msg string
	}{
		{"empty", "", "is required"},
		{"blank", " \t ", "is required"},
		{"punctuation only", "!!! ... ---", "at least one letter or digit"},
		{"emoji only", "🚀🚀", "at least one letter or digit"},
		{"too many characters", strings.Repeat("a", 101), "at most 100 characters"},
		{"identifier too long", strings.Repeat("東", 41), "too long"},
		{"control character", "acme\x00corp", "control characters"},
		{"newline", "acme\ncorp", "control characters"},
		{"invalid UTF-8", "acme\xffcorp", "valid UTF-8"},
		{"combining marks only", "\u0301\u0302", "at least one letter or digit"},
		{"bidi override", "acme\u202egnp.exe", "bidirectional"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			_, err := tenancy.Identifier(tt.name)
			require.ErrorIs(t, err, tenancy.ErrInvalid)
			var verr *tenancy.ValidationError
			require.True(t, errors.As(err, &verr))
			require.Len(t, verr.Fields, 1)
			assert.Equal(t, "organization_name", verr.Fields[0].Field)
			assert.Contains(t, verr.Fields[0].Message, tt.msg)
		})
	}
}

func TestTenantCollection(t *testing.T) {
	assert.Equal(t, "tenant_tech_innovations_corp_2_0", tenancy.TenantCollection("tech-innovations-corp-2-0"))
	assert.Equal(t, "tenant_acme", tenancy.TenantCollection("acme"))
}

// ferretCollectionName is FerretDB's rule for collection names; MongoDB's
// is laxer except for the namespace length, checked separately.
var ferretCollectionName = regexp.MustCompile("^[^\\.$\x00][^$\x00]{0,234}$")

// FuzzIdentifier checks that every accepted name yields an identifier and a
// tenant collection that are valid MongoDB names, stable when derived again,
// and that nothing panics.
func FuzzIdentifier(f *testing.F) {
	for _, s := range []string{
		"Tech Innovations Corp 2.0", "Straße", "東京テック", "Cafe\u0301", "ǅ", "ﬁ", "İstanbul",
		"a\u200db", "$ne", "..", "system.", "\x00", "\xff", strings.Repeat("ß", 60), "ﷺ", "㍻",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		id, err := tenancy.Identifier(name)
		if err != nil {
			if !errors.Is(err, tenancy.ErrInvalid) {
				t.Fatalf("Identifier(%q) error %v does not match ErrInvalid", name, err)
			}
			return
		}
		if id == "" || len(id) > tenancy.MaxIdentifierLength || !utf8.ValidString(id) {
			t.Fatalf("Identifier(%q) = %q: empty, too long or not UTF-8", name, id)
		}
		if strings.HasPrefix(id, "-") || strings.HasSuffix(id, "-") || strings.Contains(id, "--") || strings.Contains(id, "_") {
			t.Fatalf("Identifier(%q) = %q: bad separators", name, id)
		}
		// An identifier short enough to be a name is its own identifier.
		if again, err := tenancy.Identifier(id); utf8.RuneCountInString(id) <= tenancy.MaxNameLength && (err != nil || again != id) {
			t.Fatalf("Identifier(Identifier(%q)) = %q, %v; want %q", name, again, err, id)
		}
		upper, err := tenancy.Identifier(strings.ToUpper(name))
		if err == nil && upper != id && isASCII(name) {
			t.Fatalf("Identifier differs by case for ASCII %q: %q vs %q", name, id, upper)
		}
		coll := tenancy.TenantCollection(id)
		if !ferretCollectionName.MatchString(coll) || strings.ContainsAny(coll, "$.\x00") || strings.HasPrefix(coll, "system.") {
			t.Fatalf("TenantCollection(%q) = %q is not a valid collection name", id, coll)
		}
		// "<database>.<collection>" within 255 bytes for a 63-byte database name.
		if 63+1+len(coll) > 255 {
			t.Fatalf("namespace of %q too long: %d bytes", coll, 64+len(coll))
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
