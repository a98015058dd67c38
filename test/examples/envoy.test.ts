/**
 * examples/envoy: the two Envoy bootstraps are valid against Envoy's own v3 API, broken copies
 * of them are not, and they agree with examples/envoy/portcullis.yaml and the envoy bundle.
 *
 * Envoy cannot be installed on the project's machines, so validity is judged by
 * tools/envoy-validate: strict decoding into go-control-plane's Bootstrap, its generated
 * validation rules inside every typed config, and Envoy's load-time checks (see its main.go).
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { repoRoot } from '../../scripts/lib/opa.js'
import { readTarGz } from '../../src/bundles/archive.js'
import { loadConfig } from '../../src/config/load.js'
import { needsEnvoyValidate, runEnvoyValidate } from '../helpers/envoy-validate.js'
import { tempDir } from '../helpers/opa.js'

const dir = join(repoRoot, 'examples', 'envoy')
const GRPC = join(dir, 'envoy-grpc.yaml')
const HTTP = join(dir, 'envoy-http.yaml')

// Envoy bootstraps are deep, untyped YAML: `any` for reading them
const read = (file: string): any => parse(readFileSync(file, 'utf8'))
const hcm = (doc: any): any => doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config
const extAuthz = (doc: any): any => hcm(doc).http_filters[0].typed_config
const tlsContext = (doc: any): any => doc.static_resources.listeners[0].filter_chains[0].transport_socket.typed_config
const cluster = (doc: any, name: string): any => doc.static_resources.clusters.find((c: any) => c.name === name)
const endpoint = (c: any): string => {
  const a = c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
  return `${a.address as string}:${a.port_value as number}`
}
const portcullis = read(join(dir, 'portcullis.yaml'))

/** Every `filename:` value anywhere in a bootstrap. */
function filenames (node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap(filenames)
  if (node !== null && typeof node === 'object') {
    return Object.entries(node).flatMap(([k, v]) => k === 'filename' && typeof v === 'string' ? [v] : filenames(v))
  }
  return []
}

describe('the bootstraps agree with Portcullis and the repository', () => {
  test('gRPC mode: fail-closed ext_authz with the peer certificate, to Portcullis\'s gRPC address over HTTP/2', () => {
    const doc = read(GRPC)
    const f = extAuthz(doc)
    assert.equal(hcm(doc).http_filters[0].name, 'envoy.filters.http.ext_authz')
    assert.equal(f['@type'], 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz')
    assert.deepEqual([f.transport_api_version, f.include_peer_certificate, f.failure_mode_allow], ['V3', true, false])
    assert.ok(f.grpc_service.timeout !== undefined && f.with_request_body.max_request_bytes > 0 && f.status_on_error !== undefined)
    const authz = cluster(doc, f.grpc_service.envoy_grpc.cluster_name)
    assert.equal(endpoint(authz), portcullis.envoy_ext_authz.grpc.addr)
    assert.ok(authz.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicit_http_config.http2_protocol_options !== undefined)
    // the identity travels in the CheckRequest: any XFCC a client sends is dropped
    assert.equal(hcm(doc).forward_client_cert_details, 'SANITIZE')
  })

  test('HTTP service mode: Portcullis\'s HTTP address and path prefix, XFCC set by Envoy and sent along', () => {
    const doc = read(HTTP)
    const f = extAuthz(doc)
    assert.equal(f.failure_mode_allow, false)
    assert.equal(f.http_service.path_prefix, portcullis.envoy_ext_authz.http.path_prefix)
    assert.equal(endpoint(cluster(doc, f.http_service.server_uri.cluster)), portcullis.envoy_ext_authz.http.addr)
    assert.equal(f.http_service.server_uri.uri, `http://${portcullis.envoy_ext_authz.http.addr as string}`)
    assert.equal(hcm(doc).forward_client_cert_details, 'SANITIZE_SET')
    assert.equal(hcm(doc).set_current_client_cert_details.cert, true)
    assert.ok(f.allowed_headers.patterns.some((p: any) => p.exact === 'x-forwarded-client-cert'))
    // Envoy connects from loopback: Portcullis must believe its XFCC, and only its
    assert.deepEqual(portcullis.identity.x509_svid.xfcc.trusted_proxies, ['127.0.0.1'])
    // what the policy sets for the upstream and the client passes Envoy's allow-lists
    const upstream = f.http_service.authorization_response.allowed_upstream_headers.patterns.map((p: any) => p.exact)
    assert.ok(upstream.includes('x-portcullis-caller'))
  })

  test('both listeners require SPIFFE client certificates of the demo trust domain', () => {
    for (const file of [GRPC, HTTP]) {
      const tls = tlsContext(read(file))
      assert.equal(tls['@type'], 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext', file)
      assert.equal(tls.require_client_certificate, true, file)
      const sans = tls.common_tls_context.validation_context.match_typed_subject_alt_names
      assert.ok(sans.length > 0 && sans.every((m: any) => m.san_type === 'URI' && (m.matcher.prefix as string).startsWith('spiffe://example.org/')), file)
    }
  })

  test('every file a bootstrap names exists (paths relative to the repository root, where Envoy runs)', () => {
    for (const file of [GRPC, HTTP]) {
      const names = filenames(read(file))
      assert.ok(names.length >= 3, file)
      for (const name of names) assert.ok(existsSync(join(repoRoot, name)), `${file}: ${name}`)
    }
  })

  test('portcullis.yaml asks a decision path the envoy bundle has as an entrypoint', async () => {
    const files = await readTarGz(readFileSync(join(repoRoot, 'bundles', 'envoy.tar.gz')), 'envoy.tar.gz')
    const manifest = JSON.parse((files.get('.manifest') as Buffer).toString()) as { wasm: Array<{ entrypoint: string }> }
    const entrypoints = manifest.wasm.map((w) => w.entrypoint)
    assert.ok(entrypoints.includes(portcullis.envoy_ext_authz.path), `${portcullis.envoy_ext_authz.path as string} not in ${entrypoints.join(', ')}`)
    assert.ok(entrypoints.includes('envoy/authz/allow'))
  })

  test('portcullis.yaml loads as it is, with both ext_authz modes and their identity sources', (t) => {
    const raw = read(join(dir, 'portcullis.yaml'))
    // paths made absolute so the copy loads from a temporary directory
    raw.bundles.dir = join(dir, raw.bundles.dir)
    raw.identity.trust_domains['example.org'].spiffe_bundles = raw.identity.trust_domains['example.org'].spiffe_bundles.map((f: string) => join(dir, f))
    const file = join(tempDir(t), 'portcullis.yaml')
    writeFileSync(file, stringify(raw))
    const config = loadConfig({ file, env: {} })
    assert.deepEqual(config.identity?.x509_svid.sources, ['ext_authz', 'xfcc'])
    assert.deepEqual(config.identity?.jwt_svid?.audiences, ['orders'])
    assert.equal(config.envoy_ext_authz.grpc.enabled, true)
    assert.equal(config.envoy_ext_authz.http.enabled, true)
    assert.equal(config.envoy_ext_authz.path, 'envoy/authz/response')
  })
})

describe('tools/envoy-validate', needsEnvoyValidate(), () => {
  test('both example bootstraps are valid', () => {
    const r = runEnvoyValidate([GRPC, HTTP])
    assert.deepEqual(r.problems, [])
    assert.equal(r.status, 0)
    assert.equal(r.stdout.split('\n').filter((l) => l.endsWith('valid envoy.config.bootstrap.v3.Bootstrap')).length, 2)
  })

  /** A broken copy of one example: mutate the parsed YAML, write it, validate it. */
  const broken = (t: { after: (fn: () => void) => void }, base: string, mutate: (doc: any) => void): string[] => {
    const doc = read(base)
    mutate(doc)
    const file = join(tempDir(t), 'broken.yaml')
    writeFileSync(file, stringify(doc))
    const r = runEnvoyValidate([file])
    assert.equal(r.status, 1, 'a broken bootstrap must fail')
    assert.ok(r.problems.length > 0 && r.problems.every((p) => p.file === file))
    return [...new Set(r.problems.map((p) => p.kind))].sort()
  }

  const cases: Array<{ name: string, base: string, mutate: (doc: any) => void, kinds: string[] }> = [
    { name: 'an unknown field in the ext_authz typed config', base: GRPC, mutate: (d) => { extAuthz(d).include_peer_certificat = true }, kinds: ['DECODE'] },
    { name: 'an unknown field in the bootstrap', base: HTTP, mutate: (d) => { d.static_resources.listners = [] }, kinds: ['DECODE'] },
    { name: 'a string for an integer', base: GRPC, mutate: (d) => { extAuthz(d).with_request_body.max_request_bytes = 'lots' }, kinds: ['DECODE'] },
    { name: 'a number for a duration', base: HTTP, mutate: (d) => { cluster(d, 'orders_app').connect_timeout = 5 }, kinds: ['DECODE'] },
    { name: 'an unknown enum value', base: GRPC, mutate: (d) => { extAuthz(d).status_on_error.code = 'Teapot' }, kinds: ['DECODE'] },
    { name: 'a typed config of a type Envoy does not have', base: GRPC, mutate: (d) => { extAuthz(d)['@type'] = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzz' }, kinds: ['DECODE'] },
    { name: 'a cluster without a name', base: GRPC, mutate: (d) => { delete cluster(d, 'portcullis_ext_authz').name }, kinds: ['CLUSTER', 'VALIDATE'] },
    { name: 'a port out of range', base: GRPC, mutate: (d) => { d.static_resources.listeners[0].address.socket_address.port_value = 70000 }, kinds: ['VALIDATE'] },
    // the rules inside a typed config (an Any), which the Bootstrap's own validation never sees
    { name: 'a required field missing inside a typed config', base: HTTP, mutate: (d) => { delete extAuthz(d).http_service.server_uri.timeout }, kinds: ['VALIDATE'] },
    { name: 'a zero body limit inside a typed config', base: GRPC, mutate: (d) => { extAuthz(d).with_request_body.max_request_bytes = 0 }, kinds: ['VALIDATE'] },
    { name: 'an empty HTTP protocol options typed config', base: GRPC, mutate: (d) => { cluster(d, 'portcullis_ext_authz').typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'] = { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions' } }, kinds: ['CLUSTER', 'VALIDATE'] },
    { name: 'a real typed config where an HTTP filter belongs', base: GRPC, mutate: (d) => { hcm(d).http_filters[1].typed_config = { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog' } }, kinds: ['EXTENSION', 'FILTER_ORDER'] },
    { name: 'an upstream TLS context on the listener', base: HTTP, mutate: (d) => { tlsContext(d)['@type'] = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext'; delete tlsContext(d).require_client_certificate }, kinds: ['EXTENSION'] },
    { name: 'the router before ext_authz', base: GRPC, mutate: (d) => { hcm(d).http_filters.reverse() }, kinds: ['FILTER_ORDER'] },
    { name: 'a route to a cluster that does not exist', base: HTTP, mutate: (d) => { hcm(d).route_config.virtual_hosts[0].routes[0].route.cluster = 'nowhere' }, kinds: ['CLUSTER'] },
    { name: 'two clusters of one name', base: HTTP, mutate: (d) => { d.static_resources.clusters.push(cluster(d, 'orders_app')) }, kinds: ['CLUSTER'] },
    { name: 'protocol options under a key that is not their type', base: GRPC, mutate: (d) => { const o = cluster(d, 'portcullis_ext_authz').typed_extension_protocol_options; o['envoy.extensions.upstreams.http.v3.HttpOptions'] = o['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']; delete o['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'] }, kinds: ['CLUSTER', 'EXTENSION'] },
    { name: 'the gRPC cluster without HTTP/2', base: GRPC, mutate: (d) => { delete cluster(d, 'portcullis_ext_authz').typed_extension_protocol_options }, kinds: ['CLUSTER'] },
    { name: 'a deprecated field (authorization_request.allowed_headers)', base: HTTP, mutate: (d) => { extAuthz(d).http_service.authorization_request = { allowed_headers: extAuthz(d).allowed_headers }; delete extAuthz(d).allowed_headers }, kinds: ['DEPRECATED'] },
  ]
  for (const c of cases) {
    test(`fails: ${c.name}`, (t) => {
      assert.deepEqual(broken(t, c.base, c.mutate), c.kinds)
    })
  }

  test('fails: not YAML, and a missing file; a valid file beside them is still reported valid', (t) => {
    const bad = join(tempDir(t), 'bad.yaml')
    writeFileSync(bad, 'static_resources: [unclosed\n')
    const missing = join(tempDir(t), 'missing.yaml')
    const r = runEnvoyValidate([GRPC, bad, missing])
    assert.equal(r.status, 1)
    assert.deepEqual(r.problems.map((p) => [p.file, p.kind]), [[bad, 'YAML'], [missing, 'READ']])
    assert.match(r.stdout, /envoy-grpc\.yaml: valid/)
  })
})
