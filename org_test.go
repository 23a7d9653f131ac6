package tenancy_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode"
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

// TestIdentifierLookAlikes derives one identifier for names that render
// alike: invisible default-ignorable code points are dropped, the Hangul
// fillers (which render as blanks) separate words, and in a name that
// has Latin letters the Cyrillic, Greek and Armenian letters drawn like
// Latin ones count as those Latin letters.
func TestIdentifierLookAlikes(t *testing.T) {
	tests := []struct {
		desc, name, want string
	}{
		{"combining grapheme joiner", "Acme Corporation\u034f", "acme-corporation"},
		{"variation selector 16", "Acme Corporation\ufe0f", "acme-corporation"},
		{"variation selector 17", "Acme Corporation\U000E0100", "acme-corporation"},
		{"Hangul choseong filler", "Acme Corporation\u115f", "acme-corporation"},
		{"Hangul jungseong filler", "Acme Corporation\u1160", "acme-corporation"},
		{"Hangul filler between words", "Acme\u3164Corporation", "acme-corporation"},
		{"halfwidth Hangul filler between words", "Acme\uffa0Corporation", "acme-corporation"},
		{"Mongolian free variation selector", "Acme\u180b Corporation", "acme-corporation"},
		{"tag characters", "Acme Corporation\U000E0041\U000E007F", "acme-corporation"},
		{"unassigned default-ignorable", "Acme Corporation\U000E0FFF", "acme-corporation"},
		{"joiner inside a composition", "Cafe\u034f\u0301", "café"},
		{"Cyrillic a, s, m, e", "\u0410\u0441\u043c\u0435 Corporation", "acme-corporation"},
		{"one Cyrillic letter", "A\u0441me Corporation", "acme-corporation"},
		{"Cyrillic capitals", "\u0410\u0421\u041c\u0415 CORPORATION", "acme-corporation"},
		{"Greek omicron", "Acme C\u03bfrporation", "acme-corporation"},
		{"Armenian vo for n", "Acme Corporatio\u0578", "acme-corporation"},
		{"Armenian vo is a visible letter", "Acme Corporation\u0578", "acme-corporationn"},
		{"Cyrillic io with its diaeresis", "Nob\u0451l Labs", "nobël-labs"},
		{"Cyrillic word beside a Latin one", "\u0413\u0430\u0437\u043f\u0440\u043e\u043c Energy", "raзпpom-energy"},
		// Without Latin letters a name is left in its script, so that
		// names in Cyrillic, Greek or Armenian keep readable identifiers.
		{"all Cyrillic", "\u041c\u043e\u0441\u043a\u0432\u0430", "москва"},
		{"all Cyrillic look-alikes", "\u0410\u0441\u043c\u0435", "асме"},
		{"all Greek", "ΣΟΦΙΑ", "σοφια"},
		{"Armenian", "Հայաստան", "հայաստան"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got, err := tenancy.Identifier(tt.name)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	_, err := tenancy.Identifier("\u3164\u115f\u034f")
	assert.ErrorIs(t, err, tenancy.ErrInvalid, "fillers and joiners alone are no name")
}

// TestLatinLookAlikeTable checks the look-alike table: each letter is a
// small Cyrillic, Greek or Armenian letter that folding leaves as it is
// (so that a folded name can hold it), mapped to a small ASCII letter.
func TestLatinLookAlikeTable(t *testing.T) {
	for r, l := range tenancy.LatinLookAlike {
		assert.True(t, unicode.In(r, unicode.Cyrillic, unicode.Greek, unicode.Armenian) && unicode.IsLetter(r), "%U", r)
		assert.True(t, 'a' <= l && l <= 'z', "%U maps to %q", r, l)
		id, err := tenancy.Identifier(string(r))
		require.NoError(t, err)
		assert.Equal(t, string(r), id, "%U is kept by folding and, without Latin letters, by the look-alike rule", r)
		id, err = tenancy.Identifier("x" + string(r))
		require.NoError(t, err)
		assert.Equal(t, "x"+string(l), id, "%U beside a Latin letter", r)
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
		"Acme Corporation\u034f", "Acme\u3164Corporation", "\u0410\u0441\u043c\u0435 Corporation", "µTech", "Nob\u0451l",
		"\u3164", "e\u034f\u0301",
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
		// Only names with default-ignorable code points, or with look-alike
		// letters beside Latin ones, have another identifier than under
		// the earlier rules: no stored organization's changes otherwise.
		if old := tenancy.EarlierIdentifier(name, id); old != "" {
			if !strings.ContainsFunc(name, func(r rune) bool { return unicode.Is(tenancy.DefaultIgnorable, r) }) &&
				!(strings.ContainsFunc(id, func(r rune) bool { return unicode.Is(unicode.Latin, r) }) &&
					strings.ContainsFunc(old, func(r rune) bool { return unicode.In(r, unicode.Cyrillic, unicode.Greek, unicode.Armenian) })) {
				t.Fatalf("Identifier(%q) = %q changed from %q", name, id, old)
			}
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
