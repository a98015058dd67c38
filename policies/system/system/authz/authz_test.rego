package system.authz_test

import data.system.authz

test_loopback_allowed if {
	authz.allow with input as {"method": "GET", "path": "/v1/status", "remote_addr": "127.0.0.1"}
	authz.allow with input as {"method": "GET", "path": "/v1/status", "remote_addr": "::1"}
}

test_remote_anonymous_denied if {
	not authz.allow with input as {"method": "GET", "path": "/v1/status", "remote_addr": "10.1.2.3"}
}

test_remote_operator_allowed if {
	authz.allow with input as {"method": "POST", "path": "/v1/cache/flush", "remote_addr": "10.1.2.3", "identity": {"spiffe_id": "spiffe://example.org/ns/ops/sa/oncall"}}
}

test_remote_workload_denied if {
	not authz.allow with input as {"method": "POST", "path": "/v1/cache/flush", "remote_addr": "10.1.2.3", "identity": {"spiffe_id": "spiffe://example.org/ns/shop/sa/frontend"}}
}
