package envoy.authz_test

import data.envoy.authz

request(method, path, parsed, identity) := object.union(
	{
		"attributes": {"request": {"http": {"method": method, "path": path, "headers": {":authority": "orders.shop"}}}},
		"parsed_path": parsed,
		"parsed_query": {},
	},
	identity,
)

frontend := {"identity": {"spiffe_id": "spiffe://example.org/ns/shop/sa/frontend"}}

billing := {"identity": {"spiffe_id": "spiffe://example.org/ns/shop/sa/billing"}}

test_health_check_open if {
	authz.allow with input as request("GET", "/healthz", ["healthz"], {})
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
}

test_anonymous_denied_401 if {
	r := authz.response with input as request("GET", "/api/orders", ["api", "orders"], {})
	r.allowed == false
	r.http_status == 401
	r.headers["x-portcullis-caller"] == "anonymous"
}

test_wrong_caller_denied_403 if {
	r := authz.response with input as request("DELETE", "/admin/users", ["admin", "users"], frontend)
	r.allowed == false
	r.http_status == 403
}

test_ops_admin_allowed_with_headers if {
	r := authz.response with input as request("DELETE", "/admin/users", ["admin", "users"], {"identity": {"spiffe_id": "spiffe://example.org/ns/ops/sa/oncall"}})
	r.allowed == true
	r.http_status == 200
	r.headers["x-portcullis-caller"] == "spiffe://example.org/ns/ops/sa/oncall"
	r.response_headers_to_add["x-portcullis-decision"] == "allow"
}
