/**
 * crypto.x509.parse_and_verify_certificates(_with_options): chain verification (the parts of Go
 * x509.Certificate.Verify OPA's callers meet) and the builtins' option handling.
 */
import { X509Certificate } from 'node:crypto'
import type { EvalContext } from '../types.js'
import { BuiltinError, RawJson } from '../types.js'
import { ExactNumber, stringifyExact } from '../exact-json.js'
import { isNum, isObj, str } from '../args.js'
import { goCert, type ParsedCert } from './certificate.js'
import { certsFromString } from './input.js'

const EKU_NAMES: Record<string, number> = {
  KeyUsageAny: 0, KeyUsageServerAuth: 1, KeyUsageClientAuth: 2, KeyUsageCodeSigning: 3, KeyUsageEmailProtection: 4, KeyUsageIPSECEndSystem: 5,
  KeyUsageIPSECTunnel: 6, KeyUsageIPSECUser: 7, KeyUsageTimeStamping: 8, KeyUsageOCSPSigning: 9, KeyUsageMicrosoftServerGatedCrypto: 10,
  KeyUsageNetscapeServerGatedCrypto: 11, KeyUsageMicrosoftCommercialCodeSigning: 12, KeyUsageMicrosoftKernelCodeSigning: 13,
}

// ---- chain verification (Go x509.Certificate.Verify, the parts OPA's callers meet) ----

interface VerifyOpts { dnsName: string, timeMs: number, keyUsages: number[] }

function verifyChain (certs: ParsedCert[], opts: VerifyOpts): ParsedCert[] | undefined {
  if (certs.length < 2) return undefined
  const root = certs[0] as ParsedCert
  const leaf = certs[certs.length - 1] as ParsedCert
  const pool = [root, ...certs.slice(1, -1)]
  const valid = (c: ParsedCert): boolean => opts.timeMs >= Date.parse(c.notBefore) && opts.timeMs <= Date.parse(c.notAfter)
  const x = new Map<ParsedCert, X509Certificate>()
  const xc = (c: ParsedCert): X509Certificate => { let v = x.get(c); if (v === undefined) { v = new X509Certificate(c.der); x.set(c, v) } return v }
  const signedBy = (c: ParsedCert, issuer: ParsedCert): boolean => {
    if (!c.issuer.equals(issuer.subject)) return false
    try { return xc(c).verify(xc(issuer).publicKey) } catch { return false }
  }
  if (!valid(leaf)) return undefined
  if (opts.dnsName !== '' && !leaf.dns.some((d) => d.toLowerCase() === opts.dnsName.toLowerCase() || (d.startsWith('*.') && opts.dnsName.toLowerCase().endsWith(d.slice(1).toLowerCase()) && !opts.dnsName.slice(0, opts.dnsName.length - d.length + 1).includes('.')))) return undefined
  const ekuOk = (chain: ParsedCert[]): boolean => {
    if (opts.keyUsages.includes(0)) return true
    let usages = [...opts.keyUsages]
    for (const c of chain) {
      if (!c.hasEku || c.ekus.includes(0)) continue
      usages = usages.filter((u) => c.ekus.includes(u))
      if (usages.length === 0) return false
    }
    return usages.length > 0
  }
  const search = (chain: ParsedCert[]): ParsedCert[] | undefined => {
    const cur = chain[chain.length - 1] as ParsedCert
    if (cur === root || (cur.subject.equals(root.subject) && cur.der.equals(root.der))) return ekuOk(chain) ? chain : undefined
    for (const cand of pool) {
      if (chain.includes(cand) || !valid(cand)) continue
      if (cand !== root && (!cand.basicValid || !cand.isCA)) continue
      if (cand === root && cand.basicValid && !cand.isCA) continue
      if (cand.basicValid && cand.maxPathLen >= 0 && chain.length - 1 > cand.maxPathLen && cand !== root) continue
      if (cand.basicValid && cand.maxPathLen >= 0 && chain.length - 1 > cand.maxPathLen) continue
      if (!signedBy(cur, cand)) continue
      const r = search([...chain, cand])
      if (r !== undefined) return r
    }
    return undefined
  }
  return search([leaf])
}

export function verifyBuiltin (ctx: EvalContext, b: string, input: unknown, options: unknown, withUriStrings: boolean): unknown {
  const s = str(b, input, 1)
  const opts: VerifyOpts = { dnsName: '', timeMs: Number(ctx.nowNs() / 1_000_000n), keyUsages: [1] }
  if (options !== undefined) {
    if (!isObj(options)) throw new BuiltinError(b, 'operand 2 must be object')
    for (const [k, v] of Object.entries(options)) {
      switch (k) {
        case 'DNSName': opts.dnsName = str(b, v, 2); break
        case 'CurrentTime':
          if (!isNum(v)) throw new BuiltinError(b, "'CurrentTime' should be a number")
          opts.timeMs = (typeof v === 'number' ? v : Number((v as ExactNumber).text)) / 1e6
          break
        case 'KeyUsages':
          if (!Array.isArray(v)) throw new BuiltinError(b, "'KeyUsages' should be an Array or Set")
          opts.keyUsages = v.map((u) => {
            const n = typeof u === 'string' ? EKU_NAMES[u] : undefined
            if (n === undefined) throw new BuiltinError(b, `invalid entries for 'KeyUsages' found: ${String(u)}`)
            return n
          })
          break
        case 'MaxConstraintComparisions': if (!isNum(v)) throw new BuiltinError(b, "'MaxConstraintComparisions' should be a number"); break
        default: throw new BuiltinError(b, `invalid key option: ${k}`)
      }
    }
  }
  let certs: ParsedCert[]
  try {
    certs = certsFromString(b, s)
  } catch {
    return [false, []]
  }
  const chain = verifyChain(certs, opts)
  if (chain === undefined) return [false, []]
  return new RawJson(stringifyExact([true, chain.map((c) => withUriStrings ? c.json : goCert(c))]))
}
