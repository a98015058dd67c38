package system.log_test

import data.system.log

event(headers) := {"input": {"attributes": {"request": {"http": {"method": "GET", "path": "/", "headers": headers}}}}, "result": true}

test_authorization_header_erased if {
	masks := log.mask with input as event({"authorization": "Bearer abc", "accept": "*/*"})
	masks == {"/input/attributes/request/http/headers/authorization"}
}

test_cookie_and_api_key_erased if {
	masks := log.mask with input as event({"cookie": "session=1", "x-api-key": "k", "user-agent": "curl"})
	masks == {"/input/attributes/request/http/headers/cookie", "/input/attributes/request/http/headers/x-api-key"}
}

test_nothing_erased_without_credentials if {
	masks := log.mask with input as event({"accept": "*/*"})
	count(masks) == 0
}

test_body_erased_when_request_carries_credentials if {
	e := {"input": {"attributes": {"request": {"http": {"headers": {"authorization": "Basic x"}, "body": "user=a&password=b"}}}}}
	"/input/attributes/request/http/body" in log.mask with input as e
}

test_data_api_secret_fields_erased if {
	masks := log.mask with input as {"input": {"token": "eyJ...", "service": "orders", "headers": {"authorization": "Bearer x"}}}
	masks == {"/input/token", "/input/headers/authorization"}
}
