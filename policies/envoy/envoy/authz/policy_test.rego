package envoy.authz_test

import data.envoy.authz

# An input as opa-envoy-plugin (and Portcullis) builds it from a CheckRequest.
request(method, path, parsed, extra) := object.union(
	{
		"attributes": {"request": {"http": {"method": method, "path": path, "headers": {":authority": "orders.shop"}}}},
		"parsed_path": parsed,
		"parsed_query": {},
		"version": {"ext_authz": "v3", "encoding": "protojson"},
	},
	extra,
)

identity(spiffe_id) := {"identity": {
	"type": "x509-svid",
	"source": "mtls",
	"spiffe_id": spiffe_id,
	"trust_domain": split(trim_prefix(spiffe_id, "spiffe://"), "/")[0],
}}

frontend := identity("spiffe://example.org/ns/shop/sa/frontend")

billing := identity("spiffe://example.org/ns/shop/sa/billing")

oncall := identity("spiffe://example.org/ns/ops/sa/oncall")

refund(body, extra) := request("POST", "/api/refunds", ["api", "refunds"], object.union(object.union(billing, {"parsed_body": body}), extra))

test_health_check_open if {
	authz.allow with input as request("GET", "/healthz", ["healthz"], {})
	authz.allow with input as request("GET", "/readyz", ["readyz"], {})
	not authz.allow with input as request("POST", "/healthz", ["healthz"], {})
}

test_frontend_posts_orders if {
	authz.allow with input as request("POST", "/api/orders", ["api", "orders"], frontend)
}

test_billing_reads_order if {
	authz.allow with input as request("GET", "/api/orders/7", ["api", "orders", "7"], billing)
}

test_billing_may_not_post if {
	not authz.allow with input as request("POST", "/api/orders", ["api", "orders"], billing)
}

test_prefix_is_by_segment if {
	not authz.allow with input as request("GET", "/api/ordersx", ["api", "ordersx"], frontend)
	not authz.allow with input as request("GET", "/api", ["api"], frontend)
}

# parsed_path is what the policy matches, never the raw path: `//admin` and `%2F` cannot
# smuggle a request past a prefix (opa-envoy-plugin's 2026 fix, Portcullis's parser).
test_raw_path_is_not_what_counts if {
	not authz.allow with input as request("DELETE", "/admin/users", ["admin", "users"], frontend)
	not authz.allow with input as request("DELETE", "//admin/users", ["admin", "users"], frontend)
}

test_source_principal_is_not_an_identity if {
	not authz.allow with input as request("GET", "/api/orders", ["api", "orders"], {"source_principal": "spiffe://example.org/ns/shop/sa/frontend"})
}

test_other_trust_domain_denied if {
	not authz.allow with input as request("GET", "/api/orders", ["api", "orders"], identity("spiffe://evil.org/ns/shop/sa/frontend"))
}

test_caller_glob_is_one_segment if {
	authz.allow with input as request("DELETE", "/admin/users", ["admin", "users"], oncall)
	not authz.allow with input as request("DELETE", "/admin/users", ["admin", "users"], identity("spiffe://example.org/ns/ops/sa/x/y"))
}

test_refund_within_limits if {
	authz.allow with input as refund({"amount": 120, "currency": "EUR"}, {})
}

test_refund_outside_limits if {
	not authz.allow with input as refund({"amount": 501, "currency": "EUR"}, {})
	not authz.allow with input as refund({"amount": 0, "currency": "EUR"}, {})
	not authz.allow with input as refund({"amount": "100", "currency": "EUR"}, {})
	not authz.allow with input as refund({"amount": 100, "currency": "GBP"}, {})
	not authz.allow with input as refund({"amount": 100}, {})
}

test_refund_without_parsed_body_denied if {
	not authz.allow with input as request("POST", "/api/refunds", ["api", "refunds"], billing)
}

test_truncated_refund_denied_413 if {
	r := authz.response with input as refund({"amount": 100, "currency": "EUR"}, {"truncated_body": true})
	r.allowed == false
	r.http_status == 413
}

test_refund_limits_denied_403_with_reason if {
	r := authz.response with input as refund({"amount": 9000, "currency": "EUR"}, {})
	r.allowed == false
	r.http_status == 403
	json.unmarshal(r.body) == {"error": "request body outside the route's limits"}
}

test_anonymous_denied_401 if {
	r := authz.response with input as request("GET", "/api/orders", ["api", "orders"], {})
	r.allowed == false
	r.http_status == 401
	r.headers["x-portcullis-caller"] == "anonymous"
	r.headers["www-authenticate"] == `Bearer realm="example.org"`
	json.unmarshal(r.body) == {"error": "no verified workload identity"}
}

test_wrong_caller_denied_403 if {
	r := authz.response with input as request("DELETE", "/admin/users", ["admin", "users"], frontend)
	r.allowed == false
	r.http_status == 403
	r.headers["content-type"] == "application/json"
	not r.headers["www-authenticate"]
	json.unmarshal(r.body) == {"error": "caller may not use this route"}
	r.response_headers_to_add["x-portcullis-decision"] == "deny"
}

test_ops_admin_allowed_with_headers if {
	r := authz.response with input as request("DELETE", "/admin/users", ["admin", "users"], oncall)
	r.allowed == true
	r.http_status == 200
	r.headers["x-portcullis-caller"] == "spiffe://example.org/ns/ops/sa/oncall"
	r.request_headers_to_remove == ["authorization"]
	r.response_headers_to_add["x-portcullis-decision"] == "allow"
	not r.body
}

# The object decision and the boolean agree on every input above.
test_response_agrees_with_allow if {
	every inp in [
		request("GET", "/healthz", ["healthz"], {}),
		request("POST", "/api/orders", ["api", "orders"], billing),
		refund({"amount": 120, "currency": "USD"}, {}),
		refund({"amount": 120, "currency": "USD"}, {"truncated_body": true}),
	] {
		r := authz.response with input as inp
		a := authz.allow with input as inp
		r.allowed == a
	}
}
