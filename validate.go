package tenancy

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// checkDocumentID checks that id can be a document id.
func checkDocumentID(field, id string) error {
	ok := len(id) == 24
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		ok = '0' <= c && c <= '9' || 'a' <= c && c <= 'f'
	}
	if !ok {
		return &ValidationError{Fields: []FieldError{{Field: field, Message: "must be a document id: 24 lower-case hex digits"}}}
	}
	return nil
}

// checkDocument checks that data can be stored as a document.
func checkDocument(data map[string]any) error {
	var verr ValidationError
	if data == nil {
		verr.add("data", "must be an object")
		return verr.err()
	}
	if _, ok := data["_id"]; ok {
		verr.add("data._id", "is assigned by the server")
	}
	// The tenant collection's metadata document is found by the path
	// metadata.org_id, which also matches inside arrays.
	switch md := data["metadata"].(type) {
	case map[string]any:
		if _, ok := md["org_id"]; ok {
			verr.add("data.metadata.org_id", "is reserved for the tenant collection's metadata document")
		}
	case []any:
		for i, e := range md {
			if o, ok := e.(map[string]any); ok {
				if _, ok := o["org_id"]; ok {
					verr.add(fmt.Sprintf("data.metadata[%d].org_id", i), "is reserved for the tenant collection's metadata document")
				}
			}
		}
	}
	checkFields(&verr, "data", data, 1)
	return verr.err()
}

func checkFields(verr *ValidationError, path string, obj map[string]any, depth int) {
	for k, v := range obj {
		p := path + "." + k
		switch {
		case !utf8.ValidString(k):
			verr.add(path, "has a field name that is not valid UTF-8")
			continue
		case strings.HasPrefix(k, "$"):
			verr.add(p, `must not start with "$"`)
			continue
		case strings.ContainsAny(k, ".\x00"):
			verr.add(p, `must not contain "." or NUL`)
			continue
		}
		checkValue(verr, p, v, depth)
	}
}

func checkValue(verr *ValidationError, path string, v any, depth int) {
	if len(verr.Fields) >= 20 {
		return
	}
	switch v := v.(type) {
	case nil, bool, string, int, int8, int16, int32, int64, uint8, uint16, uint32, time.Time:
	case float32:
		checkFloat(verr, path, float64(v))
	case float64:
		checkFloat(verr, path, v)
	case uint, uint64:
		if u, _ := v.(uint64); u > math.MaxInt64 {
			verr.add(path, "does not fit a signed 64-bit integer")
		}
		if u, _ := v.(uint); uint64(u) > math.MaxInt64 {
			verr.add(path, "does not fit a signed 64-bit integer")
		}
	case map[string]any:
		if depth >= MaxDocumentDepth {
			verr.add(path, fmt.Sprintf("nests deeper than %d levels", MaxDocumentDepth))
			return
		}
		checkFields(verr, path, v, depth+1)
	case []any:
		if depth >= MaxDocumentDepth {
			verr.add(path, fmt.Sprintf("nests deeper than %d levels", MaxDocumentDepth))
			return
		}
		for i, e := range v {
			checkValue(verr, fmt.Sprintf("%s[%d]", path, i), e, depth+1)
		}
	default:
		verr.add(path, fmt.Sprintf("has unsupported type %T", v))
	}
}

func checkFloat(verr *ValidationError, path string, f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		verr.add(path, "must be a finite number")
	}
}
