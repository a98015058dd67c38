/**
 * Who may call the Envoy gRPC listener served with the Workload API's X.509-SVID.
 *
 * The TLS layer can only take one CA pool, and the SVID response carries the SVID's own bundle
 * and every federated one; a pool that is their union would let a federated domain's CA issue a
 * leaf naming *our* trust domain. So the TLS layer's pool is only a first filter: after the
 * handshake, each call's peer chain is verified as an X.509-SVID against the bundle of the
 * trust domain in its own URI SAN (SPIFFE Workload API §4.6; the identity verifier's
 * x509-svid.ts does the work), then matched against `envoy_grpc_client_ids`: SPIFFE IDs, or
 * trust domains (`spiffe://td`, any workload of that domain). The default (an empty list) is
 * the serving SVID's own trust domain only.
 */
import { IdentityError } from '../../errors.js'
import { mergeBundle, type TrustBundle } from '../bundle.js'
import { parseSpiffeId } from '../spiffe-id.js'
import { verifyX509Svid } from '../x509-svid.js'
import type { ServingSvid } from './parse.js'

export type PeerVerdict = { ok: true, spiffeId: string } | { ok: false, error: IdentityError }

/** A chain (DER, leaf first) → verdict, against the SVID currently served. */
export type PeerAuthorizer = (chain: readonly Uint8Array[]) => Promise<PeerVerdict>

/** @throws IdentityError PORTCULLIS_IDENTITY_BAD_SPIFFE_ID for an entry that is not a SPIFFE ID. */
export function parseAllowList (entries: readonly string[]): { ids: Set<string>, domains: Set<string> } {
  const ids = new Set<string>()
  const domains = new Set<string>()
  for (const e of entries) {
    const id = parseSpiffeId(e)
    if (id.path === '') domains.add(id.trustDomain)
    else ids.add(id.id)
  }
  return { ids, domains }
}

export function envoyPeerAuthorizer (current: () => ServingSvid | undefined, allowed: readonly string[], now: () => Date = () => new Date()): PeerAuthorizer {
  const list = parseAllowList(allowed)
  const cache = new Map<string, TrustBundle>()
  let cachedFor: ServingSvid | undefined
  return async (chain) => {
    const svid = current()
    if (svid === undefined) return { ok: false, error: new IdentityError('PORTCULLIS_IDENTITY_UNTRUSTED', 'no serving SVID: no peer can be verified') }
    if (cachedFor !== svid) { cache.clear(); cachedFor = svid }
    const bundleOf = (td: string): TrustBundle | undefined => {
      let b = cache.get(td)
      if (b === undefined) {
        const content = svid.bundles.get(td)
        if (content === undefined) return undefined
        b = mergeBundle(td, [content])
        cache.set(td, b)
      }
      return b
    }
    let spiffeId: { id: string, trustDomain: string }
    try {
      const v = await verifyX509Svid(chain, bundleOf, now(), 'mtls')
      spiffeId = { id: v.identity.spiffe_id ?? '', trustDomain: v.identity.trust_domain ?? '' }
    } catch (err) {
      if (err instanceof IdentityError) return { ok: false, error: err }
      return { ok: false, error: new IdentityError('PORTCULLIS_IDENTITY_UNTRUSTED', (err as Error).message) }
    }
    const permitted = list.ids.size === 0 && list.domains.size === 0
      ? spiffeId.trustDomain === svid.trustDomain
      : list.ids.has(spiffeId.id) || list.domains.has(spiffeId.trustDomain)
    if (!permitted) return { ok: false, error: new IdentityError('PORTCULLIS_IDENTITY_DENIED', `${spiffeId.id} is not allowed to call the Envoy gRPC listener (workload_api.envoy_grpc_client_ids)`, { spiffe_id: spiffeId.id }) }
    return { ok: true, spiffeId: spiffeId.id }
  }
}
