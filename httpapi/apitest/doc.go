// Package apitest holds the tests of package httpapi that run the API on a
// real MongoDB-wire server and check every answer against the served
// OpenAPI document. It is a module of its own so that the validator they
// use, and the database helper, stay out of the module graph of services
// that import httpapi.
package apitest
