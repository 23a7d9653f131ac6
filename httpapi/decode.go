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
		var bad []FieldIssue
		for name, dst := range fields {
			raw, ok := obj[name]
			if !ok || string(raw) == "null" {
				continue
			}
			if err := json.Unmarshal(raw, dst); err != nil {
				bad = append(bad, FieldIssue{Field: name, Message: "must be a string"})
			}
		}
		if len(bad) == 0 {
			return true
		}
		slices.SortFunc(bad, func(a, b FieldIssue) int { return strings.Compare(a.Field, b.Field) })
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

// bodyError answers a request whose body readJSON could not read.
func (a *api) bodyError(w http.ResponseWriter, r *http.Request, err error) {
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
// numbers exact: integers that fit become int64, others float64.
func (a *api) readObject(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	var raw json.RawMessage
	if err := a.readJSON(w, r, &raw); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errNotObject
	}
	convertNumbers(obj)
	return obj, nil
}

// convertNumbers replaces the json.Numbers in v, in place.
func convertNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64() // valid JSON: at worst ±Inf, which the Manager refuses
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = convertNumbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = convertNumbers(e)
		}
	}
	return v
}

var errUnsupportedMedia = errors.New("unsupported media type")

func (a *api) readJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	body := http.MaxBytesReader(w, r.Body, a.maxBody)
	defer body.Close()
	// Peek one byte to tell an empty body from a present one, whatever
	// Content-Length says (chunked bodies have none).
	var first [1]byte
	n, err := io.ReadFull(body, first[:])
	if n == 0 {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return errEmptyBody
		}
		return err
	}
	// A body without a Content-Type is taken as JSON, as FastAPI does.
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
		return errUnsupportedMedia
	}
	dec := json.NewDecoder(io.MultiReader(strings.NewReader(string(first[:])), body))
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
	return nil
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
