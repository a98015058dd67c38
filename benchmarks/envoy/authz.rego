# The ext_authz policy of benchmarks/envoy.ts, served unchanged by opa-envoy-plugin (as Rego)
# and by Portcullis (compiled with `opa build -t wasm -e envoy/authz/allow`). Written for this
# benchmark only, in the shape of opa-envoy-plugin's documented examples: a bearer JWT decoded
# (its signature is checked by Envoy's jwt_authn filter in front, as in opa-envoy-plugin's
# tutorial), per-tenant order routes from input.parsed_path, a query filter from
# input.parsed_query, a JSON body limit from input.parsed_body, and the object result form
# with headers both ways.
package envoy.authz

import rego.v1

default allow := {
	"allowed": false,
	"http_status": 403,
	"body": "{\"error\":\"forbidden\"}",
	"headers": {"content-type": "application/json", "x-ext-authz": "deny"},
}

allow := {
	"allowed": true,
	"headers": {"x-ext-authz": "allow", "x-auth-subject": claims.sub, "x-auth-role": claims.role},
	"request_headers_to_remove": ["authorization"],
} if permitted

http := input.attributes.request.http

claims := payload if {
	[scheme, token] := split(http.headers.authorization, " ")
	lower(scheme) == "bearer"
	[_, payload, _] := io.jwt.decode(token)
}

# The tenant in the path must be the caller's, and the x-tenant header (set by the gateway)
# must agree.
own_tenant(tenant) if {
	tenant == claims.tenant
	http.headers["x-tenant"] == claims.tenant
}

readers := {"reader", "writer", "admin"}

writers := {"writer", "admin"}

# Reading one order or listing orders; exports are for writers only.
permitted if {
	http.method == "GET"
	["api", "v1", "tenants", tenant, "orders"] = array.slice(input.parsed_path, 0, 5)
	count(input.parsed_path) <= 6
	own_tenant(tenant)
	claims.role in readers
	not export_requested
}

permitted if {
	http.method == "GET"
	["api", "v1", "tenants", tenant, "orders"] = array.slice(input.parsed_path, 0, 5)
	own_tenant(tenant)
	export_requested
	claims.role in writers
}

# Creating an order: writers, JSON bodies, bounded quantities.
permitted if {
	http.method == "POST"
	input.parsed_path = ["api", "v1", "tenants", tenant, "orders"]
	own_tenant(tenant)
	claims.role in writers
	startswith(http.headers["content-type"], "application/json")
	input.parsed_body.quantity > 0
	input.parsed_body.quantity <= 100
}

# Administration: admins only.
permitted if {
	input.parsed_path[0] == "admin"
	claims.role == "admin"
}

permitted if input.parsed_path == ["healthz"]

export_requested if "csv" in input.parsed_query.format
