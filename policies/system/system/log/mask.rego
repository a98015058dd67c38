# Decision-log mask policy (OPA's system.log.mask). Its input is the decision event being
# logged ({input, result, path, ...}); each JSON pointer it returns is erased from the event
# and listed in the event's `erased` field before anything is written.
#
# Credentials never belong in an audit log: bearer tokens, cookies, API keys, and any input
# field named like a secret. The header list is data (system/log/data.json).
package system.log

# METADATA
# entrypoint: true
# description: JSON pointers to erase from a decision event
mask contains pointer if {
	some name in data.system.log.sensitive_headers
	input.input.attributes.request.http.headers[name]
	pointer := concat("/", ["/input/attributes/request/http/headers", name])
}

# The Data API input may carry request headers too.
mask contains pointer if {
	some name in data.system.log.sensitive_headers
	input.input.headers[name]
	pointer := concat("/", ["/input/headers", name])
}

# Top-level input fields that hold credentials.
mask contains pointer if {
	some field in data.system.log.sensitive_input_fields
	input.input[field]
	pointer := concat("/", ["/input", field])
}

# The raw request body of an ext_authz check may hold credentials (form logins, tokens).
mask contains "/input/attributes/request/http/body" if {
	input.input.attributes.request.http.body
	some name in data.system.log.sensitive_headers
	input.input.attributes.request.http.headers[name]
}
