# Service-to-service authorization keyed on the caller's verified SPIFFE ID.
#
# Input (Portcullis adds `identity` after verifying the caller's credential):
#   {"identity": {"spiffe_id": "spiffe://example.org/ns/shop/sa/frontend", ...},
#    "service": "orders", "method": "GET", "path": "/orders/42"}
#
# The allow-list lives in data.authz.services (authz/data.json): per service, rules that
# name which callers (SPIFFE ID globs, `*` never crosses a `/`) may use which methods on
# which paths (globs over `/`-separated segments; `**` crosses segments).
package authz

# METADATA
# entrypoint: true
# description: true when the verified caller may call the method and path of the service
default allow := false

allow if {
	some rule in data.authz.services[input.service].rules
	caller_matches(rule)
	input.method in rule.methods
	path_matches(rule)
}

caller_matches(rule) if {
	some pattern in rule.callers
	glob.match(pattern, ["/"], input.identity.spiffe_id)
}

path_matches(rule) if {
	some pattern in rule.paths
	glob.match(pattern, ["/"], input.path)
}

# METADATA
# entrypoint: true
# description: the decision with the reasons for a denial, for logs and debugging
decision := {"allow": allow, "reasons": reasons}

reasons contains "caller has no verified SPIFFE identity" if not input.identity.spiffe_id

reasons contains msg if {
	not data.authz.services[input.service]
	msg := sprintf("service %q is not registered", [input.service])
}

reasons contains msg if {
	input.identity.spiffe_id
	data.authz.services[input.service]
	not allow
	msg := sprintf("%s may not %s %s on service %q", [input.identity.spiffe_id, input.method, input.path, input.service])
}
