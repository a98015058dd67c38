# Envoy ext_authz policy for a mesh: which workload (verified SPIFFE ID) may call which route of
# the service behind Envoy. Written against opa-envoy-plugin's input document, so it moves
# between OPA-Envoy and Portcullis unchanged, and serves Envoy's gRPC and HTTP service modes
# alike (examples/envoy/):
#   input.attributes.request.http.{method, path, headers}
#   input.parsed_path   ["api", "orders", "42"]  (percent-decoded, `//` not a bypass)
#   input.parsed_body   the JSON/form body when Envoy sends it (with_request_body)
#   input.truncated_body true when Envoy cut the body at max_request_bytes
#   input.identity      added by Portcullis: the caller's *verified* identity document
#                       (docs/identity.md) from the X.509-SVID Envoy passes along, XFCC of a
#                       trusted proxy, or a JWT-SVID. Never input.source_principal: that is
#                       what the peer certificate claims, not a verified identity.
#
# Routes live in data.envoy.authz.routes (envoy/authz/data.json): a path prefix compared by
# whole segments, the allowed methods, the callers (SPIFFE ID globs, `*` = one segment) and,
# optionally, limits on the request body. Health checks are open.
#
# Two entrypoints:
#   envoy/authz/allow     a boolean: opa-envoy-plugin's default decision path
#   envoy/authz/response  the object decision (allowed, headers, http_status, body, ...) that
#                         opa-envoy-plugin turns into Envoy's CheckResponse; examples/envoy/
#                         configures Portcullis with this path
package envoy.authz

import input.attributes.request.http as http_request

# METADATA
# entrypoint: true
# description: opa-envoy-plugin's default decision path (envoy/authz/allow)
default allow := false

allow if is_health_check

allow if {
	some route in permitted_routes
	body_acceptable(route)
}

is_health_check if {
	http_request.method == "GET"
	input.parsed_path in [["healthz"], ["readyz"]]
}

# Routes whose prefix, method and caller fit the request; the body is judged separately so
# that a denial can say which part failed.
permitted_routes contains route if {
	some route in matching_routes
	http_request.method in route.methods
	caller_matches(route)
}

matching_routes contains route if {
	some route in data.envoy.authz.routes
	count(route.prefix) <= count(input.parsed_path)
	array.slice(input.parsed_path, 0, count(route.prefix)) == route.prefix
}

caller_matches(route) if {
	some caller in route.callers
	glob.match(caller, ["/"], input.identity.spiffe_id)
}

# A route without body limits accepts any body.
body_acceptable(route) if not route.body

# A route with body limits needs the whole body, parsed: a body Envoy truncated at
# max_request_bytes cannot be approved (fail closed), nor one Portcullis could not parse.
body_acceptable(route) if {
	not input.truncated_body
	input.parsed_body.currency in route.body.currencies
	is_number(input.parsed_body.amount)
	input.parsed_body.amount > 0
	input.parsed_body.amount <= route.body.max_amount
}

# METADATA
# entrypoint: true
# description: the object decision opa-envoy-plugin turns into Envoy's CheckResponse
response := {
	"allowed": true,
	# ext_authz sets these on the request to the upstream, replacing any the client sent, so
	# the application may trust x-portcullis-caller (never a header the client could forge).
	"headers": {"x-portcullis-caller": caller_header},
	# the upstream never sees the caller's bearer token (a JWT-SVID is replayable until exp)
	"request_headers_to_remove": ["authorization"],
	"response_headers_to_add": {"x-portcullis-decision": "allow"},
	"http_status": 200,
} if allow

else := {
	"allowed": false,
	# on a denial Envoy sends these headers to the client, with the status and body
	"headers": object.union({"content-type": "application/json", "x-portcullis-caller": caller_header}, denial_headers),
	"response_headers_to_add": {"x-portcullis-decision": "deny"},
	"http_status": status,
	"body": json.marshal({"error": denial_reason}),
}

caller_header := input.identity.spiffe_id if input.identity.spiffe_id

else := "anonymous"

# 401: no verified workload identity; 413: a body the policy must read was cut off;
# 403: a known caller without permission, or a body outside the route's limits.
status := 401 if not input.identity.spiffe_id

else := 413 if {
	some route in permitted_routes
	route.body
	input.truncated_body
}

else := 403

denial_reason := "no verified workload identity" if status == 401

else := "request body too large to authorize" if status == 413

else := "request body outside the route's limits" if count(permitted_routes) > 0

else := "caller may not use this route"

denial_headers := {"www-authenticate": `Bearer realm="example.org"`} if status == 401

else := {}
