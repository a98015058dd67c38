/**
 * The Workload API client against a real SPIRE server and agent (test/helpers/spire.ts: join-token
 * node attestation, unix workload attestation, sqlite datastore, disk key managers), started by
 * the test on loopback and Unix sockets. Portcullis takes its serving SVID and its trust bundles
 * from the agent; SVIDs fetched with `spire-agent api fetch` are verified by Portcullis through
 * its running Data API; CA and JWT key rotations on the server reach Portcullis without a
 * restart; an agent that goes away leaves the last good state in place; a workload with no
 * registration entry is told PermissionDenied and Portcullis says so (and is not ready).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { join } from 'node:path'
import { needsSpire, startSpire, until, type Spire } from '../../helpers/spire.js'
import { startWapiRuntime, tlsCall } from '../../helpers/workload-api-runtime.js'
import { needsOpa } from '../../helpers/opa.js'
import type { Runtime } from '../../../src/server/runtime.js'
import type { WorkloadApiStatus } from '../../../src/identity/workload-api/index.js'

const skip = needsSpire().skip ?? needsOpa().skip

interface Caller { spiffe_id: string, type: string, source: string }

describe('Workload API against a real SPIRE', { ...(skip !== undefined ? { skip } : {}), timeout: 240_000 }, () => {
  let spire: Spire
  let rt: { runtime: Runtime, url: string, close: () => Promise<void> } | undefined
  before(async () => {
    // No registration entry yet: the first test is the unregistered workload.
    spire = await startSpire({ register: false })
  })
  after(async () => {
    await rt?.close()
    await spire?.stop()
  })

  const wapi = (): WorkloadApiStatus => rt?.runtime.workloadApi?.status() as WorkloadApiStatus
  const whoami = async (opts: { ca: string, cert?: string, key?: string, token?: string }): Promise<{ status: number, caller: Caller | undefined, body: Record<string, unknown>, served: string }> => {
    const r = await tlsCall(rt?.url as string, '/v1/data/whoami/caller', { ...opts, serverId: spire.workloadId, body: { input: {} } })
    return { status: r.status, caller: r.body.result as Caller | undefined, body: r.body, served: r.peer.fingerprint256 }
  }

  test('a workload with no registration entry: PermissionDenied, retried, PORTCULLIS_WORKLOAD_API_UNAVAILABLE in status, not ready; ready once an entry exists', async () => {
    rt = await startWapiRuntime({
      workload_api: { enabled: true, socket: spire.endpoint, serving_svid: true, backoff: { initial_ms: 200, max_ms: 1000 } },
      identity: { x509_svid: { sources: ['mtls'] }, jwt_svid: { audiences: ['portcullis'] }, watch: { enabled: false } },
      server: { tls: { client_auth: 'request' } },
    })
    await until(async () => (wapi().streams.x509_bundles?.failures ?? 0) >= 2 ? true : undefined, 'PermissionDenied, retried')
    const st = wapi()
    for (const s of ['x509_bundles', 'jwt_bundles', 'x509_svid'] as const) {
      assert.equal(st.streams[s]?.last_error?.code, 'PORTCULLIS_WORKLOAD_API_UNAVAILABLE', s)
      assert.equal(st.streams[s]?.last_error?.grpc_code, 'PERMISSION_DENIED', s)
    }
    assert.equal(st.ready, false)
    assert.equal(st.state, 'NOT_READY')
    const ready = await rt.runtime.app.inject({ method: 'GET', url: '/health/ready' })
    assert.equal(ready.statusCode, 503)
    const plugins = await rt.runtime.app.inject({ method: 'GET', url: '/health?plugins' })
    assert.equal(plugins.statusCode, 500)
    const metrics = await rt.runtime.metrics.registry.metrics()
    assert.match(metrics, /portcullis_workload_api_errors_total\{stream="x509_bundles",code="PERMISSION_DENIED"\} [1-9]/)

    await spire.registerSelf()
    await until(async () => wapi().ready ? true : undefined, 'Portcullis ready after the entry reached the agent', 30_000)
    assert.equal((await rt.runtime.app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200)
  })

  test('Portcullis serves the Data API with its SVID, and verifies an X.509-SVID and a JWT-SVID fetched from the agent', async () => {
    assert.ok(rt !== undefined)
    const x509 = await spire.fetchX509(join(spire.dir, 'fetched-1'))
    // a real TLS client: the served certificate's URI SAN is Portcullis's SPIFFE ID (tlsCall checks it)
    const viaX509 = await whoami({ ca: x509.bundle, cert: x509.cert, key: x509.key })
    assert.equal(viaX509.status, 200, JSON.stringify(viaX509.body))
    assert.deepEqual(viaX509.caller, { spiffe_id: spire.workloadId, type: 'x509-svid', source: 'mtls' })

    const jwt = await spire.fetchJwt('portcullis')
    const viaJwt = await whoami({ ca: x509.bundle, token: jwt })
    assert.equal(viaJwt.status, 200, JSON.stringify(viaJwt.body))
    assert.deepEqual(viaJwt.caller, { spiffe_id: spire.workloadId, type: 'jwt-svid', source: 'header' })
    // the wrong audience is refused
    const other = await whoami({ ca: x509.bundle, token: await spire.fetchJwt('someone-else') })
    assert.equal(other.status, 401)
    assert.equal(other.body.portcullis_code, 'PORTCULLIS_IDENTITY_AUDIENCE')

    const st = wapi()
    assert.equal(st.state, 'OK')
    assert.equal(st.connected, true)
    assert.equal(st.svid?.spiffe_id, spire.workloadId)
    assert.ok(Date.parse(st.svid?.expires_at ?? '') > Date.now())
    assert.deepEqual(st.trust_domains, { x509: [spire.trustDomain], jwt: [spire.trustDomain] })
    const status = await tlsCall(rt.url, '/v1/status', { ca: x509.bundle, serverId: spire.workloadId })
    const result = status.body.result as { workload_api: WorkloadApiStatus, trust_bundles: { trust_domains: Record<string, { sources: Array<{ kind: string }> }> } }
    assert.equal(result.workload_api.svid?.spiffe_id, spire.workloadId)
    assert.deepEqual(result.trust_bundles.trust_domains[spire.trustDomain]?.sources.map((s) => s.kind).sort(), ['workload_api_jwt', 'workload_api_x509'])
    const metrics = await rt.runtime.metrics.registry.metrics()
    assert.match(metrics, /portcullis_workload_api_connected\{stream="x509_svid"\} 1/)
    assert.match(metrics, /portcullis_workload_api_svid_expiry_timestamp_seconds [1-9]/)
  })

  test('X.509 CA and JWT key rotations on the server reach Portcullis without a restart', async () => {
    assert.ok(rt !== undefined)
    const before = rt.runtime.identity?.status().trust_domains[spire.trustDomain]
    assert.equal(before?.x509_authorities, 1)
    const oldX509 = await spire.fetchX509(join(spire.dir, 'fetched-2'))

    // X.509: prepare (the new CA joins the bundle), activate (new SVIDs are signed by it), taint the old one (agents re-issue)
    const prepared = JSON.parse(await spire.server(['localauthority', 'x509', 'prepare', '-output', 'json'])) as { prepared_authority: { authority_id: string } }
    await until(async () => rt?.runtime.identity?.status().trust_domains[spire.trustDomain]?.x509_authorities === 2 ? true : undefined, 'the prepared CA in Portcullis\'s bundle', 30_000)
    const activated = JSON.parse(await spire.server(['localauthority', 'x509', 'activate', '-authorityID', prepared.prepared_authority.authority_id, '-output', 'json'])) as { activated_authority: { authority_id: string } }
    assert.equal(activated.activated_authority.authority_id, prepared.prepared_authority.authority_id)
    const shown = JSON.parse(await spire.server(['localauthority', 'x509', 'show', '-output', 'json'])) as { old: { authority_id: string } }
    await spire.server(['localauthority', 'x509', 'taint', '-authorityID', shown.old.authority_id, '-output', 'json'])
    const pems = (text: string): X509Certificate[] => (text.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p))
    const signedBy = (leafPem: string, bundlePem: string): X509Certificate | undefined => {
      const leaf = new X509Certificate(leafPem)
      return pems(bundlePem).find((ca) => leaf.verify(ca.publicKey))
    }
    const oldCa = signedBy(oldX509.cert, oldX509.bundle)
    assert.ok(oldCa !== undefined)
    const rotated = await until(async () => {
      const f = await spire.fetchX509(join(spire.dir, `fetched-${Date.now()}`))
      const ca = signedBy(f.cert, f.bundle)
      return ca !== undefined && ca.fingerprint256 !== oldCa.fingerprint256 ? { ...f, ca } : undefined
    }, 'an SVID re-issued by the new CA', 60_000, 1000)
    const viaNew = await whoami({ ca: rotated.bundle, cert: rotated.cert, key: rotated.key })
    assert.equal(viaNew.status, 200, JSON.stringify(viaNew.body))
    assert.equal(viaNew.caller?.spiffe_id, spire.workloadId)
    // Portcullis's own serving SVID is re-issued by the new CA too, and served without a restart
    await until(async () => {
      const serving = rt?.runtime.workloadApi?.svid
      return serving !== undefined && new X509Certificate(serving.certPem).verify(rotated.ca.publicKey) ? true : undefined
    }, 'the serving SVID from the new CA', 60_000, 500)
    const served = await whoami({ ca: rotated.ca.toString() })
    assert.equal(served.served, new X509Certificate(rt.runtime.workloadApi?.svid?.certPem as string).fingerprint256)

    // JWT: prepare + activate; a token for a new audience set is signed with the new key
    const jwtPrepared = JSON.parse(await spire.server(['localauthority', 'jwt', 'prepare', '-output', 'json'])) as { prepared_authority: { authority_id: string } }
    await until(async () => rt?.runtime.identity?.status().trust_domains[spire.trustDomain]?.jwt_authorities === 2 ? true : undefined, 'the prepared JWT key in Portcullis\'s bundle', 30_000)
    await spire.server(['localauthority', 'jwt', 'activate', '-authorityID', jwtPrepared.prepared_authority.authority_id, '-output', 'json'])
    const token = await spire.fetchJwt('portcullis,after-rotation')
    const kid = (JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString()) as { kid: string }).kid
    assert.equal(kid, jwtPrepared.prepared_authority.authority_id)
    const viaJwt = await whoami({ ca: rotated.bundle, token })
    assert.equal(viaJwt.status, 200, JSON.stringify(viaJwt.body))
    assert.equal(viaJwt.caller?.type, 'jwt-svid')
  })

  test('the agent going away keeps the last good bundle (decisions still verify) and status shows disconnected; it reconnects when the agent is back', async () => {
    assert.ok(rt !== undefined)
    const x509 = await spire.fetchX509(join(spire.dir, 'fetched-before-stop'))
    const token = await spire.fetchJwt('portcullis')
    await spire.stopAgent()
    await until(async () => wapi().connected ? undefined : true, 'disconnected status')
    const st = wapi()
    assert.equal(st.state, 'ERROR')
    assert.equal(st.connected, false)
    assert.equal(st.ready, true, 'the last good state still serves')
    const viaX509 = await whoami({ ca: x509.bundle, cert: x509.cert, key: x509.key })
    assert.equal(viaX509.status, 200, JSON.stringify(viaX509.body))
    assert.equal(viaX509.caller?.spiffe_id, spire.workloadId)
    const viaJwt = await whoami({ ca: x509.bundle, token })
    assert.equal(viaJwt.status, 200)
    const metrics = await rt.runtime.metrics.registry.metrics()
    assert.match(metrics, /portcullis_workload_api_connected\{stream="x509_bundles"\} 0/)

    await spire.startAgent()
    await until(async () => wapi().connected ? true : undefined, 'reconnected', 30_000)
    assert.equal(wapi().state, 'OK')
  })
})
