/**
 * The Data API side by side with the real OPA server, on the wire. The same Rego sources
 * (test/fixtures/bundles/opa-diff: a boolean rule with a default, an object rule, a partial set,
 * rules that read input, rules that fail at runtime, data from data.json, the default decision
 * data.system.main) are served by `opa run --server` and, compiled by `opa build -t wasm`, by a
 * real Portcullis runtime; both listen on 127.0.0.1. Every request of the corpus goes to both
 * over real HTTP and the answers are compared: status, media type, and the JSON body once the
 * members that legitimately differ are reduced to their shape (decision_id, which OPA sends only
 * with decision logging; metrics values; provenance details; error messages and Portcullis'
 * portcullis_code). Everything else — result or its absence, warning, error code and the codes
 * in `errors` — must be equal.
 *
 * A difference Portcullis keeps on purpose is written in its case as an expected divergence
 * with its reason, and both sides are asserted: if OPA changes, the case fails and is looked at
 * again. docs/configuration.md ("Differences from OPA's REST API") lists the same differences.
 * A few typical calls also go through the official client (@styra/opa) to both servers.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync, gzipSync } from 'node:zlib'
import { OPAClient } from '@styra/opa'
import { buildBundleDir, copyFixture } from '../helpers/bundles.js'
import { needsOpa } from '../helpers/opa.js'
import { startOpaServer, type OpaServer } from '../helpers/opa-server.js'
import { startRuntime } from '../helpers/runtime.js'

interface Answer {
  status: number
  /** The media type without parameters (`application/json`), '' when there is none. */
  type: string
  encoding: string
  text: string
  json?: unknown
}

/** What one side must answer in an expected divergence. */
interface Expect {
  /** The status, or the statuses one of which it must be; 0: the connection closed without an answer. */
  status: number | number[]
  /** OPA's error `code`. */
  code?: string
  /** The v1 `result` (deep-equal), or, with `bare`, the whole body. */
  result?: unknown
  /** A v1 answer without `result` (undefined). */
  undefined?: true
  /** Portcullis' stable code. */
  portcullisCode?: string
}

interface Case {
  name: string
  method: string
  path: string
  body?: string | Buffer
  headers?: Record<string, string>
  /** Text both bodies must contain (exact digits of numbers JavaScript cannot hold). */
  includes?: string
  /** Deliberate difference: each side's expected answer, and why. */
  diverges?: { reason: string, opa: Expect, portcullis: Expect }
}

const jsonHeaders = { 'content-type': 'application/json' }
const post = (name: string, path: string, body: unknown, extra: Partial<Case> = {}): Case =>
  ({ name, method: 'POST', path, body: typeof body === 'string' ? body : JSON.stringify(body), headers: jsonHeaders, ...extra })
const get = (name: string, path: string, extra: Partial<Case> = {}): Case => ({ name, method: 'GET', path, ...extra })
const q = (v: unknown): string => encodeURIComponent(JSON.stringify(v))
const nested = (depth: number): string => `{"input":${'['.repeat(depth)}${']'.repeat(depth)}}`
const bigInput = JSON.stringify({ input: { pad: 'x'.repeat(4000) } })

/** A divergence where OPA answers 200 with a value and Portcullis refuses with a 4xx. */
const WHOLE_DOCUMENT = 'compiled wasm answers only its entrypoints (and the data beneath no rule); a package or the whole data document is computed by no entrypoint: 404, never a partial document'
const TYPE_CHECKED = "OPA's type checker rejects a path it can prove absent from a rule's value (500 rego_type_error); Portcullis evaluates the compiled entrypoint and answers undefined"
const NO_WRITE_API = 'no write API: data and policies come only from (signed) bundles, so PUT/PATCH/DELETE on the Data API are refused (405), never applied'
const REDIRECT = "OPA's router redirects a path with a trailing slash or an empty segment to its clean form; Portcullis answers the clean path at once (the same decision, and a POST keeps its body)"
const NOT_SERVED = 'not served: the query, compile and policy APIs evaluate or expose Rego source, which the compiled bundle does not carry for evaluation'

const CASES: Case[] = [
  // --- decisions on rules
  post('boolean rule, true', '/v1/data/diff/authz/allow', { input: { user: 'alice' } }),
  post('boolean rule, false', '/v1/data/diff/authz/allow', { input: { user: 'bob' } }),
  post('boolean rule, default (input user unknown)', '/v1/data/diff/authz/allow', { input: { user: 'mallory' } }),
  post('object rule', '/v1/data/diff/authz/decision', { input: { user: 'alice' } }),
  post('object rule, a member', '/v1/data/diff/authz/decision/team', { input: { user: 'alice' } }),
  post('object rule, undefined because input.user is unknown', '/v1/data/diff/authz/decision', { input: { user: 'mallory' } }),
  post('partial set', '/v1/data/diff/authz/roles', { input: { user: 'alice' } }),
  post('partial set, empty', '/v1/data/diff/authz/roles', { input: { user: 'mallory' } }),
  post('partial set, a member by its value', '/v1/data/diff/authz/roles/admin', { input: { user: 'alice' } }),
  post('partial set, a value that is not a member', '/v1/data/diff/authz/roles/admin', { input: { user: 'bob' } }),
  post('rule undefined for this input', '/v1/data/diff/authz/maybe', { input: { x: 2 } }),
  post('rule defined for this input', '/v1/data/diff/authz/maybe', { input: { x: 1 } }),
  post('complete rule with conflicting values: 500 eval_conflict_error', '/v1/data/diff/authz/conflict', { input: { conflict: true } }),
  post('complete rule, no conflict for this input', '/v1/data/diff/authz/conflict', { input: {} }),
  post('object insert conflict: 500 eval_conflict_error', '/v1/data/diff/authz/dup', { input: { dup: true } }),
  post('division', '/v1/data/diff/authz/ratio', { input: { n: 4 } }),
  post('division by zero: undefined', '/v1/data/diff/authz/ratio', { input: { n: 0 } }),
  post('division by zero under strict-builtin-errors', '/v1/data/diff/authz/ratio?strict-builtin-errors=true', { input: { n: 0 } }, {
    diverges: {
      reason: 'arithmetic runs inside the wasm module, which makes a division by zero undefined without telling the host; strict mode reaches the builtins the host implements. Undefined: no result, fail closed',
      opa: { status: 500, code: 'internal_error' },
      portcullis: { status: 200, undefined: true },
    },
  }),
  post('wasm builtin error: undefined', '/v1/data/diff/authz/num', { input: { s: 'x' } }),
  post('wasm builtin error under strict-builtin-errors', '/v1/data/diff/authz/num?strict-builtin-errors=true', { input: { s: 'x' } }, {
    diverges: {
      reason: 'to_number is compiled into the wasm module, which makes its error undefined without telling the host; strict mode reaches the builtins the host implements. Undefined: no result, fail closed',
      opa: { status: 500, code: 'internal_error' },
      portcullis: { status: 200, undefined: true },
    },
  }),
  post('host builtin error: undefined', '/v1/data/diff/authz/parsed', { input: { t: 'not a time' } }),
  post('host builtin error under strict-builtin-errors: 500 eval_builtin_error', '/v1/data/diff/authz/parsed?strict-builtin-errors=true', { input: { t: 'not a time' } }),
  post('host builtin', '/v1/data/diff/authz/parsed', { input: { t: '2024-01-02T03:04:05Z' } }),
  post('input echoed: a number beyond 2^64 keeps its digits', '/v1/data/diff/authz/echo', '{"input":{"n":123456789012345678901234567890}}', { includes: '123456789012345678901234567890' }),
  post('input echoed: 1.0, 1e3 and -0 are the same numbers', '/v1/data/diff/authz/echo', '{"input":{"a":1.0,"b":1e3,"c":-0,"d":0.1}}'),
  post('input echoed: strings with escapes and non-ASCII', '/v1/data/diff/authz/echo', { input: { s: 'a"b\\c\u00e9\u{1F600}\n' } }),
  post('a path under no bundle: undefined', '/v1/data/nothere/at/all', { input: {} }),
  // --- paths into rule values
  get('into an array by index', '/v1/data/diff/authz/shapes/list/1'),
  get('into an array past its end', '/v1/data/diff/authz/shapes/list/9', {
    diverges: { reason: TYPE_CHECKED, opa: { status: 500, code: 'internal_error' }, portcullis: { status: 200, undefined: true } },
  }),
  post('into an array past its end, in a value the type checker cannot see', '/v1/data/diff/authz/echo/list/9', { input: { list: [1] } }),
  post('into an array by index, in a value from input', '/v1/data/diff/authz/echo/list/0', { input: { list: ['first'] } }),
  post('into an object from input by a numeric segment', '/v1/data/diff/authz/echo/obj/7', { input: { obj: { 7: 'seven' } } }),
  get('into a set by a string member', '/v1/data/diff/authz/shapes/set/x'),
  get('into a set by a number member', '/v1/data/diff/authz/shapes/set/7'),
  get('into a set by a value it does not hold', '/v1/data/diff/authz/shapes/set/z'),
  get('into an array by a name', '/v1/data/diff/authz/shapes/list/x', {
    diverges: { reason: TYPE_CHECKED, opa: { status: 500, code: 'internal_error' }, portcullis: { status: 200, undefined: true } },
  }),
  get('into an object by a numeric segment', '/v1/data/diff/authz/shapes/obj/7', {
    diverges: { reason: TYPE_CHECKED, opa: { status: 500, code: 'internal_error' }, portcullis: { status: 200, undefined: true } },
  }),
  post('into an object rule by a key it never has', '/v1/data/diff/authz/decision/nope', { input: { user: 'alice' } }, {
    diverges: { reason: TYPE_CHECKED, opa: { status: 500, code: 'internal_error' }, portcullis: { status: 200, undefined: true } },
  }),
  // --- data from data.json
  get('data document', '/v1/data/diff/data/users'),
  get('data: an object member', '/v1/data/diff/data/users/bob/team'),
  get('data: an array element', '/v1/data/diff/data/users/alice/roles/0'),
  get('data: an array element, leading zero (Go strconv.Atoi)', '/v1/data/diff/data/list/01'),
  get('data: past the end of an array', '/v1/data/diff/data/list/7'),
  get('data: a number beyond 2^64 keeps its digits', '/v1/data/diff/data/limits', { includes: '12345678901234567890' }),
  post('data, POST without input', '/v1/data/diff/data/list', {}),
  get('data: a key the document does not have', '/v1/data/diff/data/nope', {
    diverges: {
      reason: 'inside a bundle\'s roots a path no compiled entrypoint or data answers could be a rule that was not compiled as an entrypoint; Portcullis refuses rather than answer undefined for it',
      opa: { status: 200, undefined: true },
      portcullis: { status: 404, code: 'resource_not_found', portcullisCode: 'PORTCULLIS_POLICY_PATH_NOT_FOUND' },
    },
  }),
  get('a package', '/v1/data/diff/authz', {
    diverges: { reason: WHOLE_DOCUMENT, opa: { status: 200 }, portcullis: { status: 404, code: 'resource_not_found', portcullisCode: 'PORTCULLIS_POLICY_PATH_NOT_FOUND' } },
  }),
  get('the whole data document, GET /v1/data', '/v1/data', {
    diverges: { reason: WHOLE_DOCUMENT, opa: { status: 200 }, portcullis: { status: 404, code: 'resource_not_found', portcullisCode: 'PORTCULLIS_POLICY_PATH_NOT_FOUND' } },
  }),
  post('the whole data document, POST /v1/data', '/v1/data', { input: {} }, {
    diverges: { reason: WHOLE_DOCUMENT, opa: { status: 200 }, portcullis: { status: 404, code: 'resource_not_found', portcullisCode: 'PORTCULLIS_POLICY_PATH_NOT_FOUND' } },
  }),
  // --- the path in the URL
  get('a percent-encoded segment', '/v1/data/diff/data/users/al%69ce/team'),
  get('a trailing slash', '/v1/data/diff/data/list/', {
    diverges: { reason: REDIRECT, opa: { status: 301 }, portcullis: { status: 200, result: [1, 2, 3] } },
  }),
  post('a trailing slash on POST', '/v1/data/diff/authz/allow/', { input: { user: 'alice' } }, {
    diverges: { reason: REDIRECT, opa: { status: 301 }, portcullis: { status: 200, result: true } },
  }),
  get('an empty segment', '/v1/data/diff//data/list', {
    diverges: { reason: REDIRECT, opa: { status: 307 }, portcullis: { status: 200, result: [1, 2, 3] } },
  }),
  get('an encoded slash inside a segment', '/v1/data/diff/data/users/a%2Fb', {
    diverges: {
      reason: 'a segment holding an encoded / could name another document to an intermediary that decodes it; Portcullis refuses it (400 PORTCULLIS_PATH_INVALID) instead of reading the key "a/b"',
      opa: { status: 200, undefined: true },
      portcullis: { status: 400, code: 'invalid_parameter', portcullisCode: 'PORTCULLIS_PATH_INVALID' },
    },
  }),
  get('a control character in a segment', '/v1/data/diff/data/users/a%00b', {
    diverges: {
      reason: 'OPA fails to parse the query it builds from the path (500); Portcullis refuses the path itself (400 PORTCULLIS_PATH_INVALID)',
      opa: { status: 500, code: 'internal_error' },
      portcullis: { status: 400, code: 'invalid_parameter', portcullisCode: 'PORTCULLIS_PATH_INVALID' },
    },
  }),
  // --- GET with ?input=
  get('GET with ?input=', `/v1/data/diff/authz/allow?input=${q({ user: 'alice' })}`),
  get('GET without input: no warning on GET', '/v1/data/diff/authz/allow'),
  get('GET with ?input= not JSON', '/v1/data/diff/authz/allow?input=notjson'),
  get('GET with ?input= empty', '/v1/data/diff/authz/allow?input='),
  get('GET with ?input=: a number beyond 2^64 keeps its digits', `/v1/data/diff/authz/echo?input=${encodeURIComponent('{"n":123456789012345678901234567890}')}`, { includes: '123456789012345678901234567890' }),
  get('GET with ?input=: a number beyond a double', `/v1/data/diff/authz/echo?input=${encodeURIComponent('{"n":1e400}')}`, {
    diverges: {
      reason: 'as in a body: a number no 64-bit float holds would reach the policy as another value (null); refused',
      opa: { status: 200 },
      portcullis: { status: 400, code: 'invalid_parameter', portcullisCode: 'PORTCULLIS_INPUT_INVALID' },
    },
  }),
  get('GET with ?input=: nested deeper than server.max_json_depth', `/v1/data/diff/authz/echo?input=${encodeURIComponent('['.repeat(100) + ']'.repeat(100))}`, {
    diverges: {
      reason: 'as in a body: nesting is bounded (server.max_json_depth)',
      opa: { status: 200 },
      portcullis: { status: 400, code: 'invalid_parameter', portcullisCode: 'PORTCULLIS_INPUT_INVALID' },
    },
  }),
  get('GET with ?input= twice: the last one', `/v1/data/diff/authz/echo?input=1&input=${q({ user: 'x' })}`),
  { ...get('GET ignores a body', `/v1/data/diff/authz/allow?input=${q({ user: 'bob' })}`), body: JSON.stringify({ input: { user: 'alice' } }), headers: jsonHeaders },
  post('POST ignores ?input=', `/v1/data/diff/authz/allow?input=${q({ user: 'alice' })}`, {}),
  // --- POST bodies
  { name: 'POST without a body', method: 'POST', path: '/v1/data/diff/authz/allow' },
  post('POST with an empty body', '/v1/data/diff/authz/allow', ''),
  post('POST with whitespace only', '/v1/data/diff/authz/allow', ' \n\t'),
  post('POST {}', '/v1/data/diff/authz/allow', '{}'),
  post('POST null', '/v1/data/diff/authz/echo', 'null'),
  post('POST {"input": null}', '/v1/data/diff/authz/echo', '{"input":null}'),
  post('POST {"input": false}', '/v1/data/diff/authz/echo', '{"input":false}'),
  post('POST an array', '/v1/data/diff/authz/allow', '[1]'),
  post('POST a string', '/v1/data/diff/authz/allow', '"x"'),
  post('POST a number', '/v1/data/diff/authz/allow', '7'),
  post('POST malformed JSON', '/v1/data/diff/authz/allow', '{"input":'),
  post('POST invalid JSON token', '/v1/data/diff/authz/allow', '{"input": tru}'),
  post('POST with members besides input', '/v1/data/diff/authz/echo', '{"input":{"a":1},"other":2}'),
  post('POST with a repeated key: the last one', '/v1/data/diff/authz/echo', '{"input":{"a":1,"a":2}}'),
  post('POST nested 60 deep', '/v1/data/diff/authz/echo', nested(60)),
  post('POST JSON followed by garbage', '/v1/data/diff/authz/echo', '{"input":{}} xyz', {
    diverges: {
      reason: 'a body is exactly one JSON document: Go\'s decoder reads the first value and ignores the rest, Portcullis refuses what a proxy or log might read otherwise',
      opa: { status: 200, result: {} },
      portcullis: { status: 400, code: 'invalid_parameter', portcullisCode: 'PORTCULLIS_INPUT_INVALID' },
    },
  }),
  post('POST a number beyond a double', '/v1/data/diff/authz/echo', '{"input":{"n":1e400}}', {
    diverges: {
      reason: 'a number no 64-bit float holds would reach the policy as another value; refused (400) rather than changed',
      opa: { status: 200 },
      portcullis: { status: 400, code: 'invalid_parameter', portcullisCode: 'PORTCULLIS_INPUT_INVALID' },
    },
  }),
  post('POST nested deeper than server.max_json_depth (64)', '/v1/data/diff/authz/echo', nested(100), {
    diverges: {
      reason: 'nesting is bounded (server.max_json_depth, 64 by default) so a request cannot exhaust the parser\'s or the policy\'s stack',
      opa: { status: 200 },
      portcullis: { status: 400, code: 'invalid_parameter', portcullisCode: 'PORTCULLIS_INPUT_INVALID' },
    },
  }),
  post('POST over server.body_limit_bytes (1 MiB)', '/v1/data/diff/authz/allow', JSON.stringify({ input: { pad: 'x'.repeat(1_100_000) } }), {
    diverges: {
      reason: 'request bodies are bounded (server.body_limit_bytes, after gzip decompression): 413, never read whole',
      opa: { status: 200, result: false },
      portcullis: { status: 413, code: 'invalid_parameter', portcullisCode: 'PORTCULLIS_INPUT_TOO_LARGE' },
    },
  }),
  // --- query parameters
  post('an empty query string', '/v1/data/diff/authz/allow?', { input: { user: 'alice' } }),
  post('?pretty=true', '/v1/data/diff/authz/decision?pretty=true', { input: { user: 'alice' } }),
  post('?pretty (no value)', '/v1/data/diff/authz/decision?pretty', { input: { user: 'alice' } }),
  post('?pretty=1 is not true', '/v1/data/diff/authz/decision?pretty=1', { input: { user: 'alice' } }),
  post('?pretty=false', '/v1/data/diff/authz/decision?pretty=false', { input: { user: 'alice' } }),
  post('?pretty=TRUE', '/v1/data/diff/authz/decision?pretty=TRUE', { input: { user: 'alice' } }),
  post('?pretty twice, one true', '/v1/data/diff/authz/decision?pretty=false&pretty=true', { input: { user: 'alice' } }),
  post('?metrics=true', '/v1/data/diff/authz/allow?metrics=true', { input: { user: 'alice' } }),
  post('?metrics=yes is not true', '/v1/data/diff/authz/allow?metrics=yes', { input: { user: 'alice' } }),
  post('?instrument=true', '/v1/data/diff/authz/allow?instrument=true', { input: { user: 'alice' } }),
  post('?provenance=true', '/v1/data/diff/authz/allow?provenance=true', { input: { user: 'alice' } }),
  post('?explain=notes with a note', '/v1/data/diff/authz/noted?explain=notes', { input: {} }, { includes: 'noted was evaluated' }),
  post('?explain=notes without notes', '/v1/data/diff/authz/allow?explain=notes', { input: { user: 'alice' } }),
  post('?explain=fails', '/v1/data/diff/authz/allow?explain=fails', { input: { user: 'alice' } }),
  post('?explain=full', '/v1/data/diff/authz/noted?explain=full', { input: {} }, {
    diverges: {
      reason: 'compiled wasm has no evaluation trace: every explain mode answers the policy\'s trace() notes (OPA: the full trace events)',
      opa: { status: 200, result: true },
      portcullis: { status: 200, result: true },
    },
  }),
  post('?explain=unknown is off', '/v1/data/diff/authz/allow?explain=bogus', { input: { user: 'alice' } }),
  post('?strict-builtin-errors=true without an error', '/v1/data/diff/authz/allow?strict-builtin-errors=true', { input: { user: 'alice' } }),
  post('an unknown query parameter', '/v1/data/diff/authz/allow?unknown=1', { input: { user: 'alice' } }),
  // --- content types and encodings
  post('content-type text/plain', '/v1/data/diff/authz/allow', { input: { user: 'alice' } }, { headers: { 'content-type': 'text/plain' } }),
  post('content-type with a charset', '/v1/data/diff/authz/allow', { input: { user: 'alice' } }, { headers: { 'content-type': 'application/json; charset=utf-8' } }),
  { name: 'no content-type', method: 'POST', path: '/v1/data/diff/authz/allow', body: JSON.stringify({ input: { user: 'alice' } }) },
  post('content-type application/x-yaml with a JSON body', '/v1/data/diff/authz/allow', { input: { user: 'alice' } }, { headers: { 'content-type': 'application/x-yaml' } }),
  post('content-type application/x-yaml with a YAML body', '/v1/data/diff/authz/allow', 'input:\n  user: alice\n', {
    headers: { 'content-type': 'application/x-yaml' },
    diverges: {
      reason: 'request bodies are JSON only (one parser, one set of limits); a YAML body is refused, never guessed at',
      opa: { status: 200, result: true },
      portcullis: { status: 400, code: 'invalid_parameter', portcullisCode: 'PORTCULLIS_INPUT_INVALID' },
    },
  }),
  { name: 'a gzip-encoded body', method: 'POST', path: '/v1/data/diff/authz/allow', body: gzipSync(JSON.stringify({ input: { user: 'alice' } })), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } },
  {
    name: 'a body that is not the gzip it claims',
    method: 'POST',
    path: '/v1/data/diff/authz/allow',
    body: 'not gzip',
    headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    diverges: {
      reason: 'OPA 1.22 mostly closes the connection without an answer (its handler fails), at times answers 400; Portcullis always answers 400 PORTCULLIS_INPUT_INVALID',
      opa: { status: [0, 400] },
      portcullis: { status: 400, code: 'invalid_parameter', portcullisCode: 'PORTCULLIS_INPUT_INVALID' },
    },
  },
  post('an unknown content-encoding', '/v1/data/diff/authz/allow', { input: { user: 'alice' } }, {
    headers: { 'content-type': 'application/json', 'content-encoding': 'br' },
    diverges: {
      reason: 'a body in an encoding Portcullis cannot decode is refused (gzip, deflate, identity); OPA reads it as if unencoded',
      opa: { status: 200, result: true },
      portcullis: { status: 400, code: 'invalid_parameter', portcullisCode: 'PORTCULLIS_INPUT_INVALID' },
    },
  }),
  // --- v0 and the default decision
  post('v0: the bare value', '/v0/data/diff/authz/decision', { user: 'alice' }),
  post('v0: undefined is 404 undefined_document', '/v0/data/diff/authz/maybe', { x: 2 }),
  { name: 'v0: no body', method: 'POST', path: '/v0/data/diff/authz/allow' },
  post('v0: null input', '/v0/data/diff/authz/echo', 'null'),
  post('v0: malformed JSON', '/v0/data/diff/authz/allow', '{'),
  post('v0: conflict', '/v0/data/diff/authz/conflict', { conflict: true }),
  post('v0: data', '/v0/data/diff/data/list', {}),
  post('v0: into a set', '/v0/data/diff/authz/roles/dev', { user: 'bob' }),
  post('v0: ?pretty=true', '/v0/data/diff/authz/decision?pretty=true', { user: 'alice' }),
  post('POST /: the default decision data.system.main', '/', { user: 'alice' }),
  post('POST /: ?pretty=true', '/?pretty=true', { user: 'alice' }),
  { name: 'POST /: no body', method: 'POST', path: '/' },
  post('POST /: malformed JSON', '/', '{'),
  get('GET /v0/data: method not allowed', '/v0/data/diff/authz/allow', {
    diverges: { reason: 'the same status; Portcullis also sends an OPA-shaped error body where OPA\'s router sends none', opa: { status: 405 }, portcullis: { status: 405, code: 'invalid_parameter', portcullisCode: 'PORTCULLIS_METHOD_NOT_ALLOWED' } },
  }),
  get('GET /', '/', {
    diverges: { reason: 'OPA serves an HTML banner page; Portcullis serves only its API', opa: { status: 200 }, portcullis: { status: 404, code: 'resource_not_found' } },
  }),
  // --- the write API and other methods
  { name: 'PUT into a bundle\'s roots', method: 'PUT', path: '/v1/data/diff/x', body: '{"a":1}', headers: jsonHeaders, diverges: { reason: NO_WRITE_API, opa: { status: 400, code: 'invalid_parameter' }, portcullis: { status: 405, code: 'invalid_parameter', portcullisCode: 'PORTCULLIS_METHOD_NOT_ALLOWED' } } },
  { name: 'PUT outside every bundle', method: 'PUT', path: '/v1/data/scratch/x', body: '{"a":1}', headers: jsonHeaders, diverges: { reason: NO_WRITE_API, opa: { status: 204 }, portcullis: { status: 405, code: 'invalid_parameter', portcullisCode: 'PORTCULLIS_METHOD_NOT_ALLOWED' } } },
  { name: 'PATCH', method: 'PATCH', path: '/v1/data/scratch', body: '[{"op":"add","path":"/y","value":1}]', headers: jsonHeaders, diverges: { reason: NO_WRITE_API, opa: { status: 204 }, portcullis: { status: 405, code: 'invalid_parameter', portcullisCode: 'PORTCULLIS_METHOD_NOT_ALLOWED' } } },
  { name: 'DELETE', method: 'DELETE', path: '/v1/data/scratch/x', diverges: { reason: NO_WRITE_API, opa: { status: 204 }, portcullis: { status: 405, code: 'invalid_parameter', portcullisCode: 'PORTCULLIS_METHOD_NOT_ALLOWED' } } },
  { name: 'HEAD', method: 'HEAD', path: '/v1/data/diff/authz/allow', diverges: { reason: 'the same status; Portcullis also sends an Allow header', opa: { status: 405 }, portcullis: { status: 405 } } },
  { name: 'OPTIONS', method: 'OPTIONS', path: '/v1/data/diff/authz/allow', diverges: { reason: 'the same status; Portcullis also sends an OPA-shaped error body', opa: { status: 405 }, portcullis: { status: 405, code: 'invalid_parameter', portcullisCode: 'PORTCULLIS_METHOD_NOT_ALLOWED' } } },
  // --- other endpoints
  get('/health', '/health'),
  get('/health?bundles', '/health?bundles'),
  get('/health?plugins', '/health?plugins'),
  get('/health/live', '/health/live', {
    diverges: { reason: 'OPA\'s /health/live and /health/ready evaluate the user\'s data.system.health policies (undefined here: 500); Portcullis answers its own liveness and readiness', opa: { status: 500 }, portcullis: { status: 200 } },
  }),
  get('/v1/policies', '/v1/policies', { diverges: { reason: NOT_SERVED, opa: { status: 200 }, portcullis: { status: 404, code: 'resource_not_found' } } }),
  get('/v1/config', '/v1/config', { diverges: { reason: 'the configuration is not served over the API (it may name key files and services); see GET /v1/status', opa: { status: 200 }, portcullis: { status: 404, code: 'resource_not_found' } } }),
  get('/v1/status', '/v1/status', {
    diverges: { reason: 'Portcullis serves its status behind the system authz policy (this deployment has none: denied); OPA serves it only with its status plugin', opa: { status: 500, code: 'internal_error' }, portcullis: { status: 403, code: 'unauthorized' } },
  }),
  get('/v1/query', `/v1/query?q=${encodeURIComponent('data.diff.authz.allow')}`, { diverges: { reason: NOT_SERVED, opa: { status: 200 }, portcullis: { status: 404, code: 'resource_not_found' } } }),
  post('/v1/compile', '/v1/compile', { query: 'data.diff.authz.allow == true' }, { diverges: { reason: NOT_SERVED, opa: { status: 200 }, portcullis: { status: 404, code: 'resource_not_found' } } }),
  get('an unknown path', '/nothing-here', {
    diverges: { reason: 'the same status; Portcullis answers in the OPA error shape where OPA\'s router answers plain text', opa: { status: 404 }, portcullis: { status: 404, code: 'resource_not_found' } },
  }),
]

/** One request over a fresh connection; bodies are read whole (gzip decoded, its use noted). */
function send (base: string, c: Pick<Case, 'method' | 'path' | 'body' | 'headers'>): Promise<Answer> {
  const u = new URL(base)
  const headers: Record<string, string> = { ...c.headers }
  if (c.body !== undefined) headers['content-length'] = String(Buffer.byteLength(c.body))
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method: c.method, path: c.path, headers, agent: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (b: Buffer) => chunks.push(b))
      res.on('end', () => {
        const encoding = String(res.headers['content-encoding'] ?? '')
        const raw = Buffer.concat(chunks)
        const text = (encoding === 'gzip' ? gunzipSync(raw) : raw).toString('utf8')
        const answer: Answer = { status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '', encoding, text }
        try { answer.json = JSON.parse(text) } catch { /* not JSON */ }
        resolve(answer)
      })
      res.on('error', reject)
    })
    req.on('timeout', () => { req.destroy(new Error(`${c.method} ${c.path}: no answer in 10 s`)) })
    // a connection closed without an answer is status 0 (an expected divergence may name it)
    req.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'ECONNRESET') resolve({ status: 0, type: '', encoding: '', text: `(connection closed: ${err.message})` })
      else reject(err)
    })
    req.end(c.body)
  })
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

/** -0 and 0 are one number to a policy; JSON.parse keeps the sign, deepEqual would not. */
function plain (v: unknown): unknown {
  if (Object.is(v, -0)) return 0
  if (Array.isArray(v)) return v.map(plain)
  if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
  return v
}

/**
 * An answer reduced to what both servers must agree on: members that legitimately differ are
 * checked for their shape here and replaced by a marker.
 */
function comparable (a: Answer, side: 'opa' | 'portcullis'): unknown {
  const body = a.json
  // ?pretty on answers (OPA indents every error body; Portcullis writes errors compact)
  const out: Record<string, unknown> = { status: a.status, type: a.type, pretty: a.status < 400 && a.text.includes('\n  ') }
  if (!isObject(body)) {
    out.body = body === undefined ? a.text : plain(body)
    return out
  }
  const b: Record<string, unknown> = { ...body }
  if (b.decision_id !== undefined) {
    assert.match(String(b.decision_id), /^[0-9a-f-]{36}$/, `${side}: decision_id`)
    delete b.decision_id
  }
  if (side === 'portcullis' && typeof b.code === 'string') {
    assert.match(String(b.portcullis_code), /^PORTCULLIS_[A-Z_]+$/, 'portcullis_code')
    delete b.portcullis_code
  }
  if (typeof b.code === 'string' && !Object.hasOwn(b, 'result')) {
    assert.equal(typeof b.message, 'string', `${side}: error message`)
    b.message = '(message)'
    if (Array.isArray(b.errors)) b.errors = b.errors.map((e: { code?: unknown }) => ({ code: e.code }))
  }
  if (b.metrics !== undefined) {
    assert.ok(isObject(b.metrics), `${side}: metrics`)
    for (const name of ['timer_rego_query_eval_ns', 'timer_server_handler_ns']) assert.equal(typeof b.metrics[name], 'number', `${side}: metrics.${name}`)
    b.metrics = '(metrics)'
  }
  if (b.provenance !== undefined) {
    const p = b.provenance as { version?: unknown, bundles?: unknown }
    assert.equal(typeof p.version, 'string', `${side}: provenance.version`)
    assert.ok(isObject(p.bundles) && Object.values(p.bundles).every((x) => isObject(x) && typeof x.revision === 'string'), `${side}: provenance.bundles`)
    b.provenance = '(provenance)'
  }
  if (b.explanation !== undefined) {
    // the notes differ in form (OPA: trace events around each note; Portcullis: the note text)
    assert.ok(Array.isArray(b.explanation), `${side}: explanation`)
    b.explanation = '(explanation)'
  }
  out.body = plain(b)
  return out
}

function check (a: Answer, want: Expect, side: 'opa' | 'portcullis', name: string): void {
  const body = isObject(a.json) ? a.json : {}
  const statuses = typeof want.status === 'number' ? [want.status] : want.status
  assert.ok(statuses.includes(a.status), `${name}: ${side} status ${a.status}, expected ${statuses.join(' or ')} (${a.text.slice(0, 300)})`)
  if (want.code !== undefined) assert.equal(body.code, want.code, `${name}: ${side} code`)
  if (want.portcullisCode !== undefined) assert.equal(body.portcullis_code, want.portcullisCode, `${name}: ${side} portcullis_code`)
  if (want.result !== undefined) assert.deepEqual(plain(body.result), want.result, `${name}: ${side} result`)
  if (want.undefined === true) {
    assert.equal(Object.hasOwn(body, 'result'), false, `${name}: ${side} has no result`)
    assert.equal(body.code, undefined, `${name}: ${side} is no error`)
  }
}

describe('the Data API side by side with the real OPA server', { ...needsOpa(), timeout: 180_000 }, () => {
  let opa: OpaServer
  let portcullis: { url: string, close: () => Promise<void> }
  let work = ''

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'portcullis-opa-diff-'))
    const src = copyFixture('opa-diff', work)
    mkdirSync(join(work, 'bundles'))
    buildBundleDir(src, join(work, 'bundles', 'opa-diff.tar.gz'), { revision: 'diff-1' })
    // OPA serves the sources as a bundle (the same .manifest roots), Portcullis the wasm build
    ;[opa, portcullis] = await Promise.all([
      startOpaServer(['--bundle', src]),
      startRuntime({}, { bundles: { dir: join(work, 'bundles'), watch: false } }),
    ])
  })
  after(async () => {
    await Promise.all([opa?.stop(), portcullis?.close()])
    rmSync(work, { recursive: true, force: true })
  })

  test('the corpus is large enough to mean something', () => {
    assert.ok(CASES.length >= 60, `${CASES.length} cases`)
    assert.equal(new Set(CASES.map((c) => c.name)).size, CASES.length, 'case names are unique')
  })

  for (const c of CASES) {
    test(`${c.method} ${c.path.length > 70 ? c.path.slice(0, 70) + '…' : c.path}: ${c.name}`, async () => {
      // one after the other, so a write OPA accepts lands before the next read
      const o = await send(opa.url, c)
      const p = await send(portcullis.url, c)
      if (c.diverges !== undefined) {
        assert.ok(c.diverges.reason.length > 20, 'a divergence says why')
        check(o, c.diverges.opa, 'opa', c.name)
        check(p, c.diverges.portcullis, 'portcullis', c.name)
        if (p.json !== undefined || p.status >= 400) assert.equal(p.type, 'application/json', `${c.name}: portcullis media type`)
        return
      }
      assert.deepEqual(comparable(p, 'portcullis'), comparable(o, 'opa'), `${c.name}\n  opa:        ${o.status} ${o.text.slice(0, 400)}\n  portcullis: ${p.status} ${p.text.slice(0, 400)}`)
      if (c.includes !== undefined) {
        assert.ok(o.text.includes(c.includes), `${c.name}: OPA's body has ${c.includes}`)
        assert.ok(p.text.includes(c.includes), `${c.name}: Portcullis' body has ${c.includes}`)
      }
    })
  }

  test('a large answer with Accept-Encoding: gzip: the same decision; OPA compresses it, Portcullis does not (single decisions are not compressed)', async () => {
    const c: Case = { name: 'gzip answer', method: 'POST', path: '/v1/data/diff/authz/echo', body: bigInput, headers: { ...jsonHeaders, 'accept-encoding': 'gzip' } }
    const o = await send(opa.url, c)
    const p = await send(portcullis.url, c)
    assert.deepEqual(comparable(p, 'portcullis'), comparable(o, 'opa'))
    assert.equal(o.encoding, 'gzip')
    assert.equal(p.encoding, '')
  })

  test('@styra/opa: the same answers from both servers', async () => {
    const clients = [new OPAClient(opa.url), new OPAClient(portcullis.url)]
    const answers = await Promise.all(clients.map(async (client) => ({
      allow: await client.evaluate('diff/authz/allow', { user: 'alice' }),
      deny: await client.evaluate('diff/authz/allow', { user: 'bob' }),
      object: await client.evaluate('diff/authz/decision', { user: 'alice' }),
      member: await client.evaluate('diff/authz/roles/admin', { user: 'alice' }),
      undefined: await client.evaluate('diff/authz/maybe', { x: 2 }),
      data: await client.evaluate('diff/data/users/alice/roles'),
      main: await client.evaluateDefault({ user: 'alice' }),
    })))
    assert.deepEqual(answers[1], answers[0])
    assert.deepEqual(answers[0], {
      allow: true,
      deny: false,
      object: { allow: true, team: 'core', user: 'alice' },
      member: 'admin',
      undefined: undefined,
      data: ['admin', 'dev'],
      main: { allow: true, user: 'alice' },
    })
  })

  test('@styra/opa: a runtime error is the same error from both servers', async () => {
    const errors = await Promise.all([opa.url, portcullis.url].map(async (url) => {
      try {
        await new OPAClient(url).evaluate('diff/authz/conflict', { conflict: true })
        return undefined
      } catch (err) {
        return { code: (err as { code?: string }).code }
      }
    }))
    assert.deepEqual(errors[1], errors[0])
    assert.deepEqual(errors[0], { code: 'internal_error' })
  })
})
