package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tenancy/tenancy"
)

// errEmptyBody reports a request without a body.
var errEmptyBody = errors.New("empty body")

// decode reads r's JSON body, an object, and sets each string of fields
// from the member of that exact name (JSON member names are case
// sensitive; encoding/json alone would match them in any case). A missing
// or null member leaves its string empty, and unknown members are ignored.
// It answers the request itself and returns false when the body is too
// large (413), not JSON (415), malformed or not an object (400), or has a
// value that is not a string where one belongs (400 naming each such
// field: an operator object like {"$ne": null} is a type error). With
// allowEmpty, a missing body is not an error.
func (a *api) decode(w http.ResponseWriter, r *http.Request, fields map[string]*string, allowEmpty bool) bool {
	var obj map[string]json.RawMessage
	err := a.readJSON(w, r, &obj)
	if err == nil {
		var bad []tenancy.FieldError
		for name, dst := range fields {
			raw, ok := obj[name]
			if !ok || string(raw) == "null" {
				continue
			}
			if err := json.Unmarshal(raw, dst); err != nil {
				bad = append(bad, tenancy.FieldError{Field: name, Message: "must be a string"})
			}
		}
		if len(bad) == 0 {
			return true
		}
		slices.SortFunc(bad, func(a, b tenancy.FieldError) int { return strings.Compare(a.Field, b.Field) })
		msgs := make([]string, len(bad))
		for i, f := range bad {
			msgs[i] = f.Field + " " + f.Message
		}
		writeProblem(w, r, Problem{Status: http.StatusBadRequest, Detail: strings.Join(msgs, "; "), Errors: bad})
		return false
	}
	if allowEmpty && errors.Is(err, errEmptyBody) {
		return true
	}
	a.bodyError(w, r, err)
	return false
}

// bodyError answers a request whose body readJSON or readObject could
// not read.
func (a *api) bodyError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, tenancy.ErrInvalid) {
		a.writeError(w, r, err)
		return
	}
	var tooLarge *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	p := Problem{Status: http.StatusBadRequest}
	switch {
	case errors.As(err, &tooLarge):
		p.Status = http.StatusRequestEntityTooLarge
		p.Detail = fmt.Sprintf("Request body exceeds %d bytes", a.maxBody)
	case errors.Is(err, errUnsupportedMedia):
		p.Status = http.StatusUnsupportedMediaType
		p.Detail = "Request body must be application/json"
	case errors.Is(err, errEmptyBody):
		p.Detail = "Request body is required: a JSON object"
	case errors.Is(err, errNotUTF8):
		p.Detail = "Request body is not valid UTF-8: it holds bytes that encode no character, or a \\u escape of a lone surrogate"
	case errors.As(err, &typeErr), errors.Is(err, errNotObject):
		p.Detail = "Request body must be a JSON object"
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		p.Detail = "Request body is not valid JSON"
	default:
		// A read error (timeout, reset): its text names addresses.
		a.log.InfoContext(r.Context(), "read request body", "request_id", RequestID(r.Context()), "err", err)
		p.Detail = "Request body could not be read"
	}
	writeProblem(w, r, p)
}

// errNotObject reports a JSON body that is not an object.
var errNotObject = errors.New("not a JSON object")

// readObject reads r's body, a JSON object of any members, keeping
// numbers exact: an integer (no fraction, no exponent) becomes an int64,
// and one that does not fit is a *tenancy.ValidationError naming its
// path (data.a.b[0], as the Manager names fields); other numbers become
// float64s.
func (a *api) readObject(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	raw, err := a.readBody(w, r)
	if err != nil {
		return nil, err
	}
	var v any
	if err := decodeJSON(raw, &v, true); err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errNotObject
	}
	var bad []tenancy.FieldError
	convertNumbers(obj, "data", &bad)
	if len(bad) > 0 {
		slices.SortFunc(bad, func(a, b tenancy.FieldError) int { return strings.Compare(a.Field, b.Field) })
		return nil, &tenancy.ValidationError{Fields: bad}
	}
	return obj, nil
}

// maxNumberIssues bounds the integers out of range one answer names.
const maxNumberIssues = 20

// convertNumbers replaces the json.Numbers in v, in place, and adds to
// bad each integer that does not fit an int64, by path.
func convertNumbers(v any, path string, bad *[]tenancy.FieldError) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		if !strings.ContainsAny(string(v), ".eE") {
			if len(*bad) < maxNumberIssues {
				*bad = append(*bad, tenancy.FieldError{Field: path, Message: "does not fit a signed 64-bit integer"})
			}
			return nil
		}
		f, _ := v.Float64() // valid JSON: at worst ±Inf, which the Manager refuses
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = convertNumbers(e, path+"."+k, bad)
		}
	case []any:
		for i, e := range v {
			v[i] = convertNumbers(e, fmt.Sprintf("%s[%d]", path, i), bad)
		}
	}
	return v
}

var errUnsupportedMedia = errors.New("unsupported media type")

// errNotUTF8 reports a body that holds bytes that are not UTF-8, or a
// \u escape of a lone surrogate, which is no character either.
// encoding/json would decode both to U+FFFD: a name stored altered, a
// password that compares as another string.
var errNotUTF8 = errors.New("not valid UTF-8")

// readJSON reads r's body, one JSON value in valid UTF-8, into dst.
func (a *api) readJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	raw, err := a.readBody(w, r)
	if err != nil {
		return err
	}
	return decodeJSON(raw, dst, false)
}

// readBody reads r's body, up to the size limit, and checks its media
// type and that it is UTF-8.
func (a *api) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, a.maxBody)
	defer body.Close()
	// Peek one byte to tell an empty body from a present one, whatever
	// Content-Length says (chunked bodies have none).
	var first [1]byte
	n, err := io.ReadFull(body, first[:])
	if n == 0 {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, errEmptyBody
		}
		return nil, err
	}
	// A body without a Content-Type is taken as JSON, as FastAPI does.
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
		return nil, errUnsupportedMedia
	}
	raw, err := io.ReadAll(io.MultiReader(bytes.NewReader(first[:]), body))
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(raw) {
		return nil, errNotUTF8
	}
	return raw, nil
}

// decodeJSON decodes raw, exactly one JSON value, into dst, with
// json.Numbers for numbers if useNumber.
func decodeJSON(raw []byte, dst any, useNumber bool) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if useNumber {
		dec.UseNumber()
	}
	if err := dec.Decode(dst); err != nil {
		return err
	}
	// Exactly one JSON value: trailing data is a malformed request.
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			return &json.SyntaxError{}
		}
		return err
	}
	if loneSurrogate(raw) {
		return errNotUTF8
	}
	return nil
}

// loneSurrogate reports whether raw, valid JSON, escapes a UTF-16
// surrogate that is not half of a pair, such as "\ud800". Outside strings
// valid JSON has no backslash, and inside them each backslash starts an
// escape (a \u one with four hex digits), so the escapes are found
// without parsing.
func loneSurrogate(raw []byte) bool {
	for i := 0; ; {
		j := bytes.IndexByte(raw[i:], '\\')
		if j < 0 {
			return false
		}
		i += j
		if raw[i+1] != 'u' {
			i += 2
			continue
		}
		r := hex4(raw[i+2:])
		i += 6
		if !utf16.IsSurrogate(r) {
			continue
		}
		if !bytes.HasPrefix(raw[i:], []byte(`\u`)) || utf16.DecodeRune(r, hex4(raw[i+2:])) == utf8.RuneError {
			return true
		}
		i += 6
	}
}

// hex4 is the value of the four hex digits that start b.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// isJSON reports whether a Content-Type is JSON: application/json or a
// +json type, with any parameters.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}
