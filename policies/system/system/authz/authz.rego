# Authorization of Portcullis's protected endpoints (GET /v1/status, POST /v1/cache/flush,
# audit export), as OPA's system.authz. Input: {method, path, remote_addr, identity}.
# Without a policy at this path Portcullis allows loopback callers only; this one keeps that
# and also admits operator workloads by verified SPIFFE ID (data.system.authz.operators).
package system.authz

# METADATA
# entrypoint: true
# description: true when the caller may use the protected endpoint
default allow := false

allow if is_loopback

allow if {
	some pattern in data.system.authz.operators
	glob.match(pattern, ["/"], input.identity.spiffe_id)
}

# Local operators (on the host itself) keep access.
is_loopback if startswith(input.remote_addr, "127.")

is_loopback if input.remote_addr == "::1"

is_loopback if input.remote_addr == "::ffff:127.0.0.1"
