/**
 * The `workload_api` section: the endpoint from the configuration or SPIFFE_ENDPOINT_SOCKET,
 * addresses outside the Workload Endpoint standard refused naming the key, and TLS without
 * certificate files when the serving certificate comes from the Workload API.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { loadConfig, type ConfigOverrides } from '../../src/config/load.js'
import { isPortcullisError } from '../../src/errors.js'

const load = (overrides: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): ReturnType<typeof loadConfig> => loadConfig({ env, overrides: overrides as ConfigOverrides })
const refusedAt = (key: string) => (e: unknown): boolean => isPortcullisError(e) && e.code === 'PORTCULLIS_CONFIG_INVALID' && e.details.key === key

describe('workload_api configuration', () => {
  test('off by default; on, the socket defaults to SPIFFE_ENDPOINT_SOCKET', () => {
    assert.equal(load({}).workload_api.enabled, false)
    const c = load({ workload_api: { enabled: true }, identity: {} }, { SPIFFE_ENDPOINT_SOCKET: 'unix:///run/spire/agent.sock' })
    assert.equal(c.workload_api.socket, 'unix:///run/spire/agent.sock')
    assert.equal(c.workload_api.trust_bundles, true)
    assert.deepEqual(c.workload_api.backoff, { initial_ms: 1000, max_ms: 30_000 })
    // trust domains delivered by the agent switch X.509-SVID verification on, as configured ones do
    assert.equal(c.identity?.x509_svid.enabled, true)
    // a configured socket wins over the environment
    assert.equal(load({ workload_api: { enabled: true, socket: 'unix:/a.sock' }, identity: {} }, { SPIFFE_ENDPOINT_SOCKET: 'unix:///b.sock' }).workload_api.socket, 'unix:/a.sock')
  })

  test('no socket anywhere, or an address outside the standard, is PORTCULLIS_CONFIG_INVALID naming workload_api.socket', () => {
    assert.throws(() => load({ workload_api: { enabled: true }, identity: {} }), refusedAt('workload_api.socket'))
    for (const socket of ['/run/spire/agent.sock', 'tcp://spire-agent:8081', 'http://127.0.0.1:8081', 'unix://host/a.sock']) {
      assert.throws(() => load({ workload_api: { enabled: true, socket }, identity: {} }), refusedAt('workload_api.socket'), socket)
    }
    assert.throws(() => load({ workload_api: { enabled: true }, identity: {} }, { SPIFFE_ENDPOINT_SOCKET: 'spire.sock' }), refusedAt('workload_api.socket'))
  })

  test('trust bundles need the identity section; backoff bounds; something must be enabled', () => {
    assert.throws(() => load({ workload_api: { enabled: true, socket: 'unix:///a.sock' } }), refusedAt('workload_api.trust_bundles'))
    assert.throws(() => load({ workload_api: { enabled: true, socket: 'unix:///a.sock', trust_bundles: false } }), refusedAt('workload_api'))
    assert.throws(() => load({ workload_api: { enabled: true, socket: 'unix:///a.sock', backoff: { initial_ms: 5000, max_ms: 1000 } }, identity: {} }), refusedAt('workload_api.backoff.initial_ms'))
    assert.throws(() => load({ workload_api: { enabled: true, socket: 'unix:///a.sock', unknown: 1 }, identity: {} }), (e: unknown) => isPortcullisError(e) && e.code === 'PORTCULLIS_CONFIG_INVALID')
  })

  test('serving_svid: TLS without certificate files (client_auth still applies); files alongside it are refused', () => {
    const c = load({ workload_api: { enabled: true, socket: 'unix:///a.sock', serving_svid: true, trust_bundles: false } })
    assert.equal(c.server.tls?.cert_file, undefined)
    assert.equal(c.server.tls?.client_auth, 'none') // nothing to verify client certificates against, none asked
    const mtls = load({ workload_api: { enabled: true, socket: 'unix:///a.sock', serving_svid: true }, identity: {}, server: { tls: { client_auth: 'require' } } })
    assert.equal(mtls.server.tls?.client_auth, 'require')
    assert.throws(() => load({ workload_api: { enabled: true, socket: 'unix:///a.sock', serving_svid: true, trust_bundles: false }, server: { tls: { client_auth: 'require' } } }), refusedAt('server.tls.client_auth'))
    assert.throws(() => load({ workload_api: { enabled: true, socket: 'unix:///a.sock', serving_svid: true, trust_bundles: false }, server: { tls: { cert_file: 'c.pem', key_file: 'k.pem' } } }), refusedAt('server.tls.cert_file'))
    // without serving_svid the files stay required
    assert.throws(() => load({ server: { tls: { key_file: 'k.pem' } } }), refusedAt('server.tls.cert_file'))
  })
})
