/**
 * The requests of benchmarks/envoy.ts: request `i` as Envoy's ext_authz filter would send it,
 * once as a gRPC CheckRequest (protojson, for ghz's --data-file) and once as the HTTP request
 * the filter's http_service forwards (method, path, allowed headers, body; for wrk). Both
 * modes ask the policy (benchmarks/envoy/authz.rego) the same question about request `i`:
 * same method, path, query, headers and body.
 *
 * Every request differs (request id, path, source address and port, time), so no decision cache
 * could help; 7 in 32 are denied (a reader creating an order, a non-admin on /admin, a reader
 * asking for a CSV export), so both the allow and the deny result shapes are exercised.
 */

/** An unsigned-looking JWT: the policy only decodes it (Envoy's jwt_authn verifies in front). */
function jwt (claims: Record<string, unknown>): string {
  const part = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
  return `${part({ alg: 'ES256', typ: 'JWT', kid: 'gw-1' })}.${part(claims)}.${Buffer.alloc(64, 7).toString('base64url')}`
}

const users = [
  { sub: 'alice', role: 'reader', tenant: 'acme' },
  { sub: 'bob', role: 'writer', tenant: 'acme' },
  { sub: 'carol', role: 'admin', tenant: 'globex' },
  { sub: 'dave', role: 'reader', tenant: 'globex' },
].map((u) => ({ ...u, token: jwt({ ...u, iss: 'https://idp.example.org', aud: 'shop', iat: 1_790_000_000, exp: 1_890_000_000 }) }))

export interface HttpRequestSpec {
  method: string
  /** path with query, as the client sent it */
  path: string
  /** the headers Envoy forwards (lower-case names), without :pseudo-headers */
  headers: Record<string, string>
  body: string
}

/** Request `i` (both modes). */
export function httpRequest (i: number): HttpRequestSpec {
  // the user rotates every 8 requests, so each kind of request below is made by every user
  const user = users[(i >> 3) % users.length] as (typeof users)[number]
  const id = `${(0x10000000 + i).toString(16)}-4bd0-4c1e-9a52-${(i * 7919).toString(16).padStart(12, '0')}`
  const headers: Record<string, string> = {
    authorization: `Bearer ${user.token}`,
    'x-tenant': user.tenant,
    'x-request-id': id,
    'x-forwarded-proto': 'https',
    'user-agent': 'shop-frontend/3.4.1',
    accept: 'application/json',
  }
  const base = `/api/v1/tenants/${user.tenant}/orders`
  let method = 'GET'
  let path: string
  let body = ''
  switch (i % 8) {
    case 5: // create an order (readers are denied)
      method = 'POST'
      path = base
      body = JSON.stringify({ sku: `sku-${i % 977}`, quantity: 1 + (i % 50), note: `order ${i}` })
      headers['content-type'] = 'application/json'
      break
    case 6: // administration (only carol is allowed)
      path = `/admin/users/${i}`
      break
    case 7: // a CSV export (writers and admins only)
      path = `${base}?format=csv&since=${1_790_000_000 + i}`
      break
    default:
      path = `${base}/${100_000 + i}?page=${i % 10}&fields=id,total,status`
  }
  return { method, path, headers, body }
}

/** Request `i` as a CheckRequest in protojson (Envoy's field names, lowerCamelCase). */
export function checkRequest (i: number): unknown {
  const r = httpRequest(i)
  const q = r.path.indexOf('?')
  const seconds = 1_796_000_000 + Math.floor(i / 1000)
  const nanos = (i % 1000) * 1_000_000 + 123_456
  return {
    attributes: {
      source: {
        address: { socketAddress: { address: `10.1.${(i >> 8) & 255}.${i & 255}`, portValue: 1024 + (i % 60_000) } },
        principal: 'spiffe://example.org/ns/shop/sa/gateway',
      },
      destination: {
        address: { socketAddress: { address: '10.2.0.15', portValue: 8080 } },
        principal: 'spiffe://example.org/ns/shop/sa/orders',
      },
      request: {
        time: new Date(seconds * 1000).toISOString().replace('.000Z', `.${String(nanos).padStart(9, '0')}Z`),
        http: {
          id: String(9_000_000_000 + i),
          method: r.method,
          headers: {
            ':authority': 'orders.shop.example.org',
            ':method': r.method,
            ':path': r.path,
            ':scheme': 'https',
            ...r.headers,
            ...(r.body !== '' ? { 'content-length': String(Buffer.byteLength(r.body)) } : {}),
          },
          path: r.path,
          host: 'orders.shop.example.org',
          scheme: 'https',
          ...(q >= 0 ? { query: r.path.slice(q + 1) } : {}),
          protocol: 'HTTP/1.1',
          ...(r.body !== '' ? { size: String(Buffer.byteLength(r.body)), body: r.body } : {}),
        },
      },
      contextExtensions: { virtual_host: 'orders' },
    },
  }
}
