package tenancy

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Identifier derives an organization's identifier from its name. The
// identifier is what makes two names the same organization: case, width,
// accents in composed or decomposed form, spaces and punctuation do not
// count. Letters and digits of any script are kept (case-folded, NFKC
// normalized), every run of other characters becomes one "-", and
// invisible format characters and every default-ignorable code point are
// dropped (the Hangul fillers, drawn as blanks, separate words):
//
//	"Tech Innovations Corp 2.0" -> "tech-innovations-corp-2-0"
//
// Look-alike letters count as the letters they are drawn like where that
// can make a name pass for another: in a name with Latin letters, the
// Cyrillic, Greek and Armenian letters drawn like Latin ones are those
// Latin letters ("Асме Corporation" in Cyrillic and "Acme Corporation"
// are one name). A name without Latin letters keeps its script.
//
// It returns a *ValidationError for the field "organization_name" if the
// name is empty, too long, not UTF-8, has control characters, has no letter
// or digit, or yields an identifier longer than MaxIdentifierLength.
func Identifier(name string) (string, error) {
	_, id, msg := identifier(name)
	if msg != "" {
		return "", &ValidationError{Fields: []FieldError{{Field: "organization_name", Message: msg}}}
	}
	return id, nil
}

// TenantCollection returns the tenant collection name of an identifier:
// "tenant_" followed by the identifier with "-" as "_". Identifiers never
// contain "_", so distinct identifiers give distinct collections.
func TenantCollection(identifier string) string {
	return TenantCollectionPrefix + strings.ReplaceAll(identifier, "-", "_")
}

// identifier returns the trimmed name and its identifier, or a message
// saying why the name is refused.
func identifier(name string) (trimmed, id, msg string) {
	if !utf8.ValidString(name) {
		return "", "", "must be valid UTF-8"
	}
	trimmed = strings.TrimSpace(name)
	if trimmed == "" {
		return "", "", "is required"
	}
	if utf8.RuneCountInString(trimmed) > MaxNameLength {
		return "", "", fmt.Sprintf("must be at most %d characters", MaxNameLength)
	}
	for _, r := range trimmed {
		switch {
		case unicode.IsControl(r):
			return "", "", "must not contain control characters"
		case unicode.Is(unicode.Bidi_Control, r):
			// Overrides can make a name display as another one.
			return "", "", "must not contain bidirectional control characters"
		}
	}
	id, alnum := deriveIdentifier(trimmed, false)
	if !alnum {
		return "", "", "must contain at least one letter or digit"
	}
	if len(id) > MaxIdentifierLength {
		return "", "", fmt.Sprintf("is too long: its identifier %q is %d bytes, the limit is %d", truncate(id, 24), len(id), MaxIdentifierLength)
	}
	return trimmed, id, ""
}

// deriveIdentifier derives the identifier of a trimmed, checked name and
// says whether it has a letter or digit. With earlier set, it follows the
// rules before default-ignorable code points and look-alike letters
// counted (only format characters were dropped): see earlierIdentifier.
func deriveIdentifier(trimmed string, earlier bool) (id string, alnum bool) {
	s := trimmed
	if !earlier {
		s = dropIgnorables(s)
	}
	folded := foldName(s)
	if !earlier {
		folded = latinLookAlikes(folded)
	}
	var b strings.Builder
	b.Grow(len(folded))
	sep := false
	for _, r := range folded {
		switch {
		case !earlier && isHangulFiller(r):
			sep = true
		case unicode.Is(unicode.Cf, r) || !earlier && unicode.Is(defaultIgnorable, r):
			// Zero-width joiners, soft hyphens, variation selectors and
			// the like are invisible: names differing only by them are
			// the same name.
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.In(r, unicode.Mn, unicode.Mc):
			if sep && b.Len() > 0 {
				b.WriteByte('-')
			}
			sep = false
			alnum = alnum || unicode.IsLetter(r) || unicode.IsDigit(r)
			b.WriteRune(r)
		default:
			sep = true
		}
	}
	return b.String(), alnum
}

// earlierIdentifier returns the identifier name had under the rules before
// default-ignorable code points and look-alike letters counted, if that
// differs from id (its identifier now), or "". An organization created
// then is stored under that identifier: lookups by name fall back to it,
// and creates and renames refuse a name whose earlier identifier is
// taken, so that such an organization stays reachable by its name and no
// new one takes its name. Only names with such code points or letters
// differ; no ASCII name does.
func earlierIdentifier(name, id string) string {
	trimmed := strings.TrimSpace(name)
	for i := 0; i < len(trimmed); i++ {
		if trimmed[i] >= utf8.RuneSelf {
			if old, _ := deriveIdentifier(trimmed, true); old != id {
				return old
			}
			return ""
		}
	}
	return ""
}

// foldName case-folds and NFKC-normalizes s, with a fast path for ASCII.
func foldName(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	// Normalize on both sides of the fold: folding can produce sequences
	// that compose differently. The final lower-casing settles the scripts
	// (Cherokee) whose case folding maps to upper case, so that an
	// identifier derived again from itself stays the same.
	return strings.ToLower(norm.NFKC.String(cases.Fold().String(norm.NFKC.String(s))))
}

// truncate shortens s to at most n runes for an error message.
func truncate(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j] + "…"
		}
		i++
	}
	return s
}
