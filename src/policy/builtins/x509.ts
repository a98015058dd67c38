/**
 * crypto.x509.* and crypto.parse_private_keys (OPA v1/topdown/crypto.go). Certificates are
 * parsed from DER here, field by field, into the JSON Go's encoding/json makes of an
 * x509.Certificate (plus OPA's URIStrings), so policies see exactly the shapes `opa eval` prints.
 *
 * The entry module: the builtin specs live here; the implementation is in ./x509/ (DER field
 * readers, certificates, inputs, chain verification, private keys, CSRs).
 */
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto'
import type { BuiltinSpec } from './types.js'
import { BuiltinError, RawJson } from './types.js'
import { stringifyExact } from './exact-json.js'
import { str } from './args.js'
import { pemDecode } from './pem.js'
import { b64 } from './x509/fields.js'
import { certsJson, goCert, parseCertificate, type ParsedCert } from './x509/certificate.js'
import { certsFromString, strictBase64 } from './x509/input.js'
import { verifyBuiltin } from './x509/verify.js'
import { keyJson, privateKeyFromBlock } from './x509/keys.js'
import { parseCsr } from './x509/csr.js'

export { goUrl } from './x509/fields.js'
export { parseCertificate } from './x509/certificate.js'
export type { ParsedCert } from './x509/certificate.js'

export const x509Builtins: BuiltinSpec[] = [
  {
    name: 'crypto.x509.parse_certificates',
    impl: (_ctx, [x]) => certsJson(certsFromString('crypto.x509.parse_certificates', str('crypto.x509.parse_certificates', x, 1))),
  },
  {
    name: 'crypto.x509.parse_and_verify_certificates',
    nondeterministic: true, // validity is checked against the clock
    impl: (ctx, [x]) => verifyBuiltin(ctx, 'crypto.x509.parse_and_verify_certificates', x, undefined, true),
  },
  {
    name: 'crypto.x509.parse_and_verify_certificates_with_options',
    nondeterministic: true,
    impl: (ctx, [x, o]) => verifyBuiltin(ctx, 'crypto.x509.parse_and_verify_certificates_with_options', x, o ?? {}, false),
  },
  {
    name: 'crypto.x509.parse_certificate_request',
    impl: (_ctx, [x]) => {
      const b = 'crypto.x509.parse_certificate_request'
      const s = str(b, x, 1)
      let der: Buffer
      if (s.startsWith('-----BEGIN')) {
        const blk = pemDecode(s)
        if (blk === undefined) throw new BuiltinError(b, 'invalid PEM-encoded certificate signing request')
        der = blk.bytes
      } else {
        const raw = strictBase64(b, s)
        const blk = raw.subarray(0, 10).toString('latin1') === '-----BEGIN' ? pemDecode(raw.toString('latin1')) : undefined
        der = blk?.bytes ?? raw
      }
      try {
        return new RawJson(stringifyExact(parseCsr(der)))
      } catch (err) {
        if (err instanceof BuiltinError) throw err
        throw new BuiltinError(b, `x509: malformed certificate request (${(err as Error).message})`)
      }
    },
  },
  {
    name: 'crypto.x509.parse_rsa_private_key',
    impl: (_ctx, [x]) => {
      const b = 'crypto.x509.parse_rsa_private_key'
      const s = str(b, x, 1)
      const raw = s.startsWith('-----BEGIN') ? s : strictBase64(b, s).toString('latin1')
      const blk = pemDecode(raw)
      if (blk === undefined) throw new BuiltinError(b, 'failed to parse PEM block containing the key')
      // OPA hands the PEM block to a JWK parser, which takes any private key type.
      const k = privateKeyFromBlock(blk.type, blk.bytes)
      if (k === undefined) throw new BuiltinError(b, 'x509: failed to parse private key')
      return k.export({ format: 'jwk' })
    },
  },
  {
    name: 'crypto.parse_private_keys',
    impl: (_ctx, [x]) => {
      const b = 'crypto.parse_private_keys'
      const s = str(b, x, 1)
      if (s === '') return null
      let raw = s
      if (!s.startsWith('-----BEGIN')) {
        try { raw = strictBase64(b, s).toString('latin1') } catch { raw = s }
      }
      const out: unknown[] = []
      let rest = raw
      for (;;) {
        const blk = pemDecode(rest)
        if (blk === undefined) break
        rest = blk.rest
        if (!blk.type.endsWith('PRIVATE KEY')) continue
        const k = privateKeyFromBlock(blk.type, blk.bytes)
        if (k === undefined) throw new BuiltinError(b, `failed to parse ${blk.type}`)
        out.push(keyJson(k))
      }
      return new RawJson(stringifyExact(out))
    },
  },
  {
    name: 'crypto.x509.parse_keypair',
    impl: (_ctx, [c, k]) => {
      const b = 'crypto.x509.parse_keypair'
      const decode = (v: unknown, pos: number): string => {
        const s = str(b, v, pos)
        return s.startsWith('-----BEGIN') ? s : strictBase64(b, s).toString('latin1')
      }
      const certPem = decode(c, 1); const keyPem = decode(k, 2)
      const certs: Buffer[] = []
      let rest = certPem
      for (;;) {
        const blk = pemDecode(rest)
        if (blk === undefined) break
        rest = blk.rest
        if (blk.type === 'CERTIFICATE') certs.push(blk.bytes)
      }
      if (certs.length === 0) throw new BuiltinError(b, 'tls: failed to find any PEM data in certificate input')
      let key: KeyObject | undefined
      rest = keyPem
      for (;;) {
        const blk = pemDecode(rest)
        if (blk === undefined) break
        rest = blk.rest
        if (blk.type === 'PRIVATE KEY' || blk.type.endsWith(' PRIVATE KEY')) { key = privateKeyFromBlock(blk.type, blk.bytes); break }
      }
      if (key === undefined) throw new BuiltinError(b, 'tls: failed to find any PEM data in key input')
      let leaf: ParsedCert
      try {
        leaf = parseCertificate(certs[0] as Buffer)
      } catch {
        throw new BuiltinError(b, 'tls: failed to parse certificate')
      }
      // tls.X509KeyPair: the private key must match the leaf's public key.
      const spkiLeaf = new X509Certificate(certs[0] as Buffer).publicKey.export({ type: 'spki', format: 'der' })
      if (!createPublicKey(key).export({ type: 'spki', format: 'der' }).equals(spkiLeaf)) throw new BuiltinError(b, 'tls: private key does not match public key')
      return new RawJson(stringifyExact({
        Certificate: certs.map(b64), PrivateKey: keyJson(key), SupportedSignatureAlgorithms: null, OCSPStaple: null, SignedCertificateTimestamps: null, Leaf: goCert(leaf),
      }))
    },
  },
]
