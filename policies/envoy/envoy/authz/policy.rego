# Envoy ext_authz policy, written against opa-envoy-plugin's input document so that policies
# move between OPA-Envoy and Portcullis unchanged:
#   input.attributes.request.http.{method, path, headers, host}
#   input.parsed_path  (["api", "orders", "42"]), input.parsed_query ({"k": ["v"]})
#   input.identity     (added by Portcullis: the verified SPIFFE identity of the caller)
#
# Routes live in data.envoy.authz.routes (envoy/authz/data.json): a path prefix, allowed
# methods and the SPIFFE IDs (globs) that may call it. Health checks are open.
package envoy.authz

import input.attributes.request.http as http_request

# METADATA
# entrypoint: true
# description: opa-envoy-plugin's default decision path (envoy/authz/allow)
default allow := false

allow if is_health_check

allow if {
	some route in matching_routes
	http_request.method in route.methods
	some caller in route.callers
	glob.match(caller, ["/"], input.identity.spiffe_id)
}

is_health_check if {
	http_request.method == "GET"
	input.parsed_path == ["healthz"]
}

matching_routes contains route if {
	some route in data.envoy.authz.routes
	count(route.prefix) <= count(input.parsed_path)
	array.slice(input.parsed_path, 0, count(route.prefix)) == route.prefix
}

# METADATA
# entrypoint: true
# description: an opa-envoy-plugin object result, with headers for the upstream and a status for denials
response := {
	"allowed": allow,
	"headers": {"x-portcullis-caller": caller_header},
	"response_headers_to_add": {"x-portcullis-decision": decision_word},
	"http_status": status,
}

caller_header := input.identity.spiffe_id if input.identity.spiffe_id

else := "anonymous"

decision_word := "allow" if allow

else := "deny"

status := 200 if allow

else := 401 if not input.identity.spiffe_id

else := 403
