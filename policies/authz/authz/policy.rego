# Service-to-service authorization keyed on the caller's verified SPIFFE ID.
#
# Input (Portcullis adds `identity` after verifying the caller's credential):
#   {"identity": {"spiffe_id": "spiffe://example.org/ns/shop/sa/frontend", ...},
#    "service": "orders", "method": "GET", "path": "/orders/42"}
#
# The allow-list lives in data.authz.services (authz/data.json): per service, rules that
# name which callers (SPIFFE IDs) may use which methods on which paths. In caller and path
# patterns a `*` segment matches exactly one `/`-separated segment (never several), so
# `spiffe://example.org/ns/ops/sa/*` admits every service account of namespace ops.
# Patterns are matched segment by segment rather than with glob.match: the same semantics
# without compiling a regular expression per call, which keeps the decision fast.
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
	segments_match(pattern, input.identity.spiffe_id)
}

path_matches(rule) if {
	some pattern in rule.paths
	segments_match(pattern, input.path)
}

# Exact match, the common case: no splitting at all.
segments_match(pattern, value) if pattern == value

# A pattern with `*` segments: same number of segments, each equal or `*`.
segments_match(pattern, value) if {
	is_string(value)
	contains(pattern, "*")
	want := split(pattern, "/")
	got := split(value, "/")
	count(want) == count(got)
	every i, segment in want {
		segment_matches(segment, got[i])
	}
}

segment_matches("*", _)

segment_matches(segment, value) if {
	segment != "*"
	segment == value
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
