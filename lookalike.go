package tenancy

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// defaultIgnorable is Default_Ignorable_Code_Point, from Unicode 17.0.0's
// DerivedCoreProperties.txt (Go's unicode package has no table for it):
// code points that render as nothing where they are not supported, so
// that two names differing by them look the same. It includes the
// unassigned code points reserved for the property.
var defaultIgnorable = &unicode.RangeTable{
	R16: []unicode.Range16{
		{Lo: 0x00ad, Hi: 0x00ad, Stride: 1},
		{Lo: 0x034f, Hi: 0x034f, Stride: 1},
		{Lo: 0x061c, Hi: 0x061c, Stride: 1},
		{Lo: 0x115f, Hi: 0x1160, Stride: 1},
		{Lo: 0x17b4, Hi: 0x17b5, Stride: 1},
		{Lo: 0x180b, Hi: 0x180f, Stride: 1},
		{Lo: 0x200b, Hi: 0x200f, Stride: 1},
		{Lo: 0x202a, Hi: 0x202e, Stride: 1},
		{Lo: 0x2060, Hi: 0x206f, Stride: 1},
		{Lo: 0x3164, Hi: 0x3164, Stride: 1},
		{Lo: 0xfe00, Hi: 0xfe0f, Stride: 1},
		{Lo: 0xfeff, Hi: 0xfeff, Stride: 1},
		{Lo: 0xffa0, Hi: 0xffa0, Stride: 1},
		{Lo: 0xfff0, Hi: 0xfff8, Stride: 1},
	},
	R32: []unicode.Range32{
		{Lo: 0x1bca0, Hi: 0x1bca3, Stride: 1},
		{Lo: 0x1d173, Hi: 0x1d17a, Stride: 1},
		{Lo: 0xe0000, Hi: 0xe0fff, Stride: 1},
	},
}

// isHangulFiller reports the Hangul fillers. They are default-ignorable
// letters, but fonts draw them as a blank as wide as a syllable, so in a
// name they separate words as a space does.
func isHangulFiller(r rune) bool {
	return r == 0x115f || r == 0x1160 || r == 0x3164 || r == 0xffa0
}

// dropIgnorables removes the default-ignorable code points from s and
// turns the Hangul fillers into spaces. It runs before normalization, so
// that a combining grapheme joiner, say, cannot keep "e" and an accent
// from composing into the "é" another name has.
func dropIgnorables(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return unicode.Is(defaultIgnorable, r) })
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for _, r := range s[i:] {
		switch {
		case isHangulFiller(r):
			b.WriteByte(' ')
		case unicode.Is(defaultIgnorable, r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// latinLookAlike maps the case-folded Cyrillic, Greek and Armenian letters
// that are drawn like a Latin letter, in either case, to that letter. It
// is taken from Unicode 17.0.0's confusables.txt (UTS #39): every letter
// of those scripts whose small or capital form is listed there as
// confusable with one ASCII letter, keyed by its small form. Left out are
// the letters whose two forms resemble two different Latin letters (Greek
// ν: N and v, υ: Y and u) and those that normalization already maps to
// another letter; Greek ι and Cyrillic і, listed as I and l, map to i,
// the fold of I.
var latinLookAlike = map[rune]rune{
	// Greek
	0x03b1: 'a', // α, Α
	0x03b2: 'b', // Β
	0x03b3: 'y', // γ
	0x03b5: 'e', // Ε
	0x03b6: 'z', // Ζ
	0x03b7: 'h', // Η
	0x03b9: 'i', // ι, Ι
	0x03ba: 'k', // Κ
	0x03bc: 'm', // Μ
	0x03bf: 'o', // ο, Ο
	0x03c1: 'p', // ρ, Ρ
	0x03c3: 'o', // σ
	0x03c4: 't', // Τ
	0x03c7: 'x', // Χ
	0x03dd: 'f', // Ϝ
	0x03f3: 'j', // ϳ, Ϳ
	0x03f8: 'p', // ϸ
	0x03fb: 'm', // Ϻ
	0x1d26: 'r', // ᴦ
	// Cyrillic
	0x0430: 'a', // а, А
	0x0432: 'b', // В
	0x0433: 'r', // г
	0x0435: 'e', // е, Е
	0x043a: 'k', // К
	0x043c: 'm', // М
	0x043d: 'h', // Н
	0x043e: 'o', // о, О
	0x0440: 'p', // р, Р
	0x0441: 'c', // с, С
	0x0442: 't', // Т
	0x0443: 'y', // у, У
	0x0445: 'x', // х, Х
	0x0448: 'w', // ш
	0x044c: 'b', // Ь
	0x0455: 's', // ѕ, Ѕ
	0x0456: 'i', // і, І
	0x0458: 'j', // ј, Ј
	0x0461: 'w', // ѡ
	0x0475: 'v', // ѵ, Ѵ
	0x04af: 'y', // ү, Ү
	0x04bb: 'h', // һ
	0x04bd: 'e', // ҽ
	0x04cf: 'l', // ӏ, Ӏ
	0x0501: 'd', // ԁ
	0x050d: 'g', // Ԍ
	0x051b: 'q', // ԛ
	0x051d: 'w', // ԝ, Ԝ
	0xa647: 'i', // ꙇ
	// Armenian
	0x0561: 'w', // ա
	0x0563: 'q', // գ
	0x0566: 'q', // զ
	0x0570: 'h', // հ
	0x0578: 'n', // ո
	0x057c: 'n', // ռ
	0x057d: 'u', // ս, Ս
	0x057f: 's', // Տ
	0x0581: 'g', // ց
	0x0582: 'i', // ւ
	0x0584: 'f', // ք
	0x0585: 'o', // օ, Օ
}

// latinLookAlikes replaces, in a folded name that has a Latin letter, the
// letters of latinLookAlike by the Latin letters they are drawn like, so
// that "Асме Corporation" (Cyrillic А, с, м, е) is "acme corporation". A
// name without Latin letters is left in its script: its identifier stays
// readable, and it can only look like a Latin name if every one of its
// letters does, which this check does not catch (UTS #39 calls that a
// whole-script confusable).
func latinLookAlikes(folded string) string {
	ascii := true
	for i := 0; i < len(folded); i++ {
		if folded[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return folded
	}
	// Decomposed, so that a Cyrillic ё maps as е and its diaeresis, and
	// composes again into the ë a Latin name has.
	d := norm.NFD.String(folded)
	latin, mapped := false, false
	for _, r := range d {
		if _, ok := latinLookAlike[r]; ok {
			mapped = true
		} else if !latin && unicode.Is(unicode.Latin, r) {
			latin = true
		}
	}
	if !latin || !mapped {
		return folded
	}
	return norm.NFC.String(strings.Map(func(r rune) rune {
		if l, ok := latinLookAlike[r]; ok {
			return l
		}
		return r
	}, d))
}
