/** providers.aws.sign_req (OPA v1/topdown/providers.go, internal/providers/aws SigV4). */
import { createHash, createHmac } from 'node:crypto'
import type { BuiltinSpec } from './types.js'
import { BuiltinError } from './types.js'
import { isNum, isObj } from './args.js'
import { ExactNumber } from './exact-json.js'
import { goJson } from './json.js'
import { civil, UTC } from './gotime.js'
import { escape, parseUrl } from './uri.js'

const REQUIRED = ['aws_service', 'aws_access_key', 'aws_secret_access_key', 'aws_region']
const HTTP_KEYS = new Set(['method', 'url', 'body', 'enable_redirect', 'force_json_decode', 'force_yaml_decode', 'headers', 'raw_body', 'tls_use_system_certs',
  'tls_ca_cert', 'tls_ca_cert_file', 'tls_ca_cert_env_variable', 'tls_client_cert', 'tls_client_cert_file', 'tls_client_cert_env_variable', 'tls_client_key',
  'tls_client_key_file', 'tls_client_key_env_variable', 'tls_insecure_skip_verify', 'tls_server_name', 'timeout', 'cache', 'force_cache', 'force_cache_duration_seconds',
  'raise_error', 'caching_mode', 'max_retry_attempts', 'cache_ignored_headers'])
const IGNORED = new Set(['authorization', 'user-agent', 'x-amzn-trace-id'])

const hmac = (key: Buffer | string, msg: string): Buffer => createHmac('sha256', key).update(msg).digest()
const sha256hex = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')
const strOf = (v: unknown): string => typeof v === 'string' ? v : ''
const byteOrder = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

export const providersBuiltins: BuiltinSpec[] = [
  {
    name: 'providers.aws.sign_req',
    numberText: true,
    impl: (_ctx, [r, c, t]) => {
      const b = 'providers.aws.sign_req'
      if (!isObj(r)) throw new BuiltinError(b, 'operand 1 must be object')
      if (!isObj(c)) throw new BuiltinError(b, 'operand 1 must be object')
      const missing = REQUIRED.filter((k) => !Object.hasOwn(c, k))
      if (missing.length > 0) throw new BuiltinError(b, `operand 2 missing required AWS config parameters(s): ${missing.join(', ')}`)
      if (REQUIRED.some((k) => typeof c[k] !== 'string')) throw new BuiltinError(b, 'operand 2 invalid values for required AWS config parameters(s)')
      const ts = timestampNs(b, t)
      for (const k of Object.keys(r)) if (!HTTP_KEYS.has(k)) throw new BuiltinError(b, `invalid request parameter "${k}"`)
      if (!Object.hasOwn(r, 'method') || !Object.hasOwn(r, 'url')) throw new BuiltinError(b, 'missing required request parameters')
      let headers: Record<string, unknown> = {}
      if (r.headers !== undefined) {
        if (!isObj(r.headers)) throw new BuiltinError(b, 'operand 0 must be object')
        headers = r.headers
      }
      if (typeof r.url !== 'string' || typeof r.method !== 'string') throw new BuiltinError(b, 'operand 1 invalid values for required request parameters(s)')
      let url: ReturnType<typeof parseUrl>
      try { url = parseUrl(r.url) } catch (err) { throw new BuiltinError(b, (err as Error).message) }
      const body = Object.hasOwn(r, 'raw_body') ? Buffer.from(strOf(r.raw_body)) : Object.hasOwn(r, 'body') ? Buffer.from(goJson(r.body)) : Buffer.alloc(0)
      let disablePayloadSigning = false
      if (Object.hasOwn(c, 'disable_payload_signing')) {
        if (typeof c.disable_payload_signing !== 'boolean') throw new BuiltinError(b, "operand 2 invalid value for 'disable_payload_signing' in AWS config")
        disablePayloadSigning = c.disable_payload_signing
      }
      const service = strOf(c.aws_service); const region = strOf(c.aws_region)
      const accessKey = strOf(c.aws_access_key); const secretKey = strOf(c.aws_secret_access_key); const sessionToken = strOf(c.aws_session_token)
      const bodyHash = disablePayloadSigning ? 'UNSIGNED-PAYLOAD' : sha256hex(body)
      const tm = civil(ts, UTC)
      const p2 = (n: number): string => String(n).padStart(2, '0')
      const dateNow = `${String(tm.year).padStart(4, '0')}${p2(tm.month)}${p2(tm.day)}`
      const iso = `${dateNow}T${p2(tm.hour)}${p2(tm.minute)}${p2(tm.second)}Z`
      const awsHeaders: Record<string, string> = { host: url.host, 'x-amz-date': iso }
      if (service === 's3' || service === 'glacier') awsHeaders['x-amz-content-sha256'] = bodyHash
      if (sessionToken !== '') awsHeaders['x-amz-security-token'] = sessionToken
      const toSign: Record<string, string> = { ...awsHeaders }
      const headersMap: Record<string, string> = {}
      for (const [k, v] of Object.entries(headers)) {
        headersMap[k] = strOf(v)
        if (!IGNORED.has(k.toLowerCase())) toSign[k.toLowerCase()] = strOf(v)
      }
      // Go url.EscapedPath: RawPath when it is a valid encoding of Path, else Path escaped.
      const validEncoded = /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%/]*$/.test(url.rawPath)
      const escapedPath = url.rawPath !== '' && validEncoded && decodeURIComponentSafe(url.rawPath) === url.path ? url.rawPath : escape(url.path, 'path')
      const ordered = Object.keys(toSign).sort(byteOrder)
      let canonical = `${r.method}\n${escapedPath}\n${url.rawQuery}\n`
      for (const k of ordered) canonical += `${k}:${toSign[k] as string}\n`
      canonical += '\n' + ordered.join(';') + '\n' + bodyHash
      const scope = `${dateNow}/${region}/${service}/aws4_request`
      const strToSign = `AWS4-HMAC-SHA256\n${iso}\n${scope}\n${sha256hex(canonical)}`
      let key = hmac('AWS4' + secretKey, dateNow)
      key = hmac(key, region); key = hmac(key, service); key = hmac(key, 'aws4_request')
      const signature = hmac(key, strToSign).toString('hex')
      const auth = `AWS4-HMAC-SHA256 Credential=${accessKey}/${scope},SignedHeaders=${ordered.join(';')},Signature=${signature}`
      return { ...r, headers: { ...headersMap, Authorization: auth, ...awsHeaders } }
    },
  },
]

/**
 * The signing time: OPA reads it with ast.Number.Int64, strconv.ParseInt of the number's text,
 * so only an integer written as one (no fraction, no exponent: `-1e9` is refused) within int64.
 */
function timestampNs (b: string, t: unknown): bigint {
  if (!isNum(t)) throw new BuiltinError(b, 'operand 1 must be number')
  const text = t instanceof ExactNumber ? t.text : Number.isInteger(t) ? BigInt(t).toString() : String(t)
  const ts = /^[-+]?\d+$/.test(text) ? BigInt(text) : undefined
  if (ts === undefined || ts > 9223372036854775807n || ts < -9223372036854775808n) throw new BuiltinError(b, 'operand 3 could not convert time_ns value into a unix timestamp')
  return ts
}

function decodeURIComponentSafe (s: string): string {
  try { return decodeURIComponent(s) } catch { return '' }
}
