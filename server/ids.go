package server

import (
	"net/http"

	"github.com/tokend/tokend/store"
)

// Identifiers at the edge. Every identifier a request carries (a client
// ID, a username, a subject, a family ID) is checked against
// store.IDRule once, where it enters, before it reaches the throttle, an
// Authenticator or the store: PostgreSQL refuses NUL and invalid UTF-8,
// and a control character has no business in a log line. The answers:
//
//   - a client_id that authenticates a request (form or Basic): 401
//     invalid_client, the answer to a client that cannot exist (RFC 6749
//     §5.2), not counted by the throttle (no secret can match it);
//   - any other parameter, JSON field or path segment: 400
//     invalid_request naming it.
//
// The description states the rule, never the value, and nothing logs a
// refused value: the access log shows the route's pattern for a path
// whose segment was refused (pathID).

// checkParam checks the identifier in a form parameter or JSON field:
// kind is "parameter" or "field".
func checkParam(kind, name, value string) error {
	if store.CheckID(value) != nil {
		return errInvalidRequest(kind + " " + quoteParam(name) + " must be " + store.IDRule)
	}
	return nil
}

// checkClientID checks the client_id a request authenticates with: 401
// invalid_client, with the Basic challenge if it came in Basic.
func checkClientID(id string, basic bool) error {
	if store.CheckID(id) != nil {
		e := errInvalidClient(basic)
		e.Description = `client authentication failed: "client_id" must be ` + store.IDRule
		return e
	}
	return nil
}

// pathID returns the path segment name of r (a wildcard of its route) if
// it is an identifier; otherwise 400 invalid_request naming it, and the
// access log shows the route's pattern instead of the path.
func pathID(r *http.Request, name string) (string, error) {
	v := r.PathValue(name)
	if store.CheckID(v) != nil {
		if ri, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
			ri.pathRefused = true
		}
		return "", errInvalidRequest("path segment {" + name + "} must be " + store.IDRule)
	}
	return v, nil
}
