package authz_test

import data.authz

frontend := {"spiffe_id": "spiffe://example.org/ns/shop/sa/frontend"}

billing := {"spiffe_id": "spiffe://example.org/ns/shop/sa/billing"}

test_frontend_reads_orders if {
	authz.allow with input as {"identity": frontend, "service": "orders", "method": "GET", "path": "/orders/42"}
}

test_frontend_creates_orders if {
	authz.allow with input as {"identity": frontend, "service": "orders", "method": "POST", "path": "/orders"}
}

test_frontend_may_not_delete_orders if {
	not authz.allow with input as {"identity": frontend, "service": "orders", "method": "DELETE", "path": "/orders/42"}
}

test_billing_reads_invoice if {
	authz.allow with input as {"identity": billing, "service": "orders", "method": "GET", "path": "/orders/42/invoice"}
}

test_path_glob_does_not_cross_segments if {
	not authz.allow with input as {"identity": frontend, "service": "orders", "method": "GET", "path": "/orders/42/invoice"}
}

test_frontend_may_not_charge if {
	not authz.allow with input as {"identity": frontend, "service": "payments", "method": "POST", "path": "/charges"}
}

test_ops_workloads_by_glob if {
	authz.allow with input as {"identity": {"spiffe_id": "spiffe://example.org/ns/ops/sa/prometheus"}, "service": "payments", "method": "GET", "path": "/metrics"}
}

test_caller_glob_does_not_cross_segments if {
	not authz.allow with input as {"identity": {"spiffe_id": "spiffe://example.org/ns/ops/sa/x/y"}, "service": "payments", "method": "GET", "path": "/metrics"}
}

test_other_trust_domain_denied if {
	not authz.allow with input as {"identity": {"spiffe_id": "spiffe://evil.org/ns/shop/sa/frontend"}, "service": "orders", "method": "GET", "path": "/orders/1"}
}

test_anonymous_denied_with_reason if {
	d := authz.decision with input as {"service": "orders", "method": "GET", "path": "/orders/1"}
	d.allow == false
	"caller has no verified SPIFFE identity" in d.reasons
}

test_unknown_service_reason if {
	d := authz.decision with input as {"identity": frontend, "service": "inventory", "method": "GET", "path": "/"}
	d.allow == false
	"service \"inventory\" is not registered" in d.reasons
}

test_allowed_decision_has_no_reasons if {
	d := authz.decision with input as {"identity": frontend, "service": "orders", "method": "GET", "path": "/orders/1"}
	d == {"allow": true, "reasons": set()}
}
