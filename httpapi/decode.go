package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// errEmptyBody reports a request without a body.
var errEmptyBody = errors.New("empty body")

// decode reads r's JSON body into dst, a pointer to a struct of string
// fields. It answers the request itself and returns false when the body
// is too large (413), not JSON (415) or malformed (400, naming the field
// whose value has the wrong type). With allowEmpty, a missing body is not
// an error and leaves dst alone.
func (a *api) decode(w http.ResponseWriter, r *http.Request, dst any, allowEmpty bool) bool {
	err := a.readJSON(w, r, dst)
	if err == nil || (allowEmpty && errors.Is(err, errEmptyBody)) {
		return true
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
	case errors.As(err, &typeErr) && typeErr.Field != "":
		p.Detail = fmt.Sprintf("%s must be a string", typeErr.Field)
		p.Errors = []FieldIssue{{Field: typeErr.Field, Message: "must be a string"}}
	case errors.As(err, &typeErr):
		p.Detail = "Request body must be a JSON object"
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		p.Detail = "Request body is not valid JSON"
	default:
		p.Detail = "Request body is not valid JSON: " + err.Error()
	}
	writeProblem(w, r, p)
	return false
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
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
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
