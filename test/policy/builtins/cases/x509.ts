import { keys } from './keys.js'
import { table, type Group } from './types.js'

const T2025 = 1_735_689_600_000_000_000 // 2025-01-01 in ns
const T2040 = 2_208_988_800_000_000_000

export async function x509Group (): Promise<Group> {
  const k = await keys()
  const { root, inter, leaf } = k.chain
  const b64 = (s: string): string => Buffer.from(s).toString('base64')
  const derB64 = (pem: string): string => pem.replace(/-----[^-]+-----/g, '').replace(/\s/g, '')
  const full = root + inter + leaf
  const rsaPkcs1 = k.rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }) as string
  const rsaPkcs8 = k.rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  const ecSec1 = k.p256.privateKey.export({ type: 'sec1', format: 'pem' }) as string
  const ecPkcs8 = k.p384.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  const edPkcs8 = k.ed.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  const garbled = k.ecCertPem.replace(/(\n[A-Za-z0-9+/]{10})[A-Za-z0-9+/]{4}/, '$1AAAA')
  return {
    name: 'x509',
    tables: [
      table('crypto.x509.parse_certificates', [
        [k.richPem], [k.edCertPem], [k.pssCertPem], [k.ecCertPem], [k.rsaCertPem], [root], [inter], [leaf], [full], [b64(k.ecCertPem)], [derB64(k.rsaCertPem)], [derB64(root) ], [garbled], [''], ['not a cert'],
        ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'], [k.rsa.spkiPem], [1], ['junk' + k.ecCertPem],
      ]),
      table('crypto.x509.parse_and_verify_certificates', [[full], [root + leaf], [inter + leaf], [leaf], [root + inter + k.ecCertPem], [b64(full)], ['x'], [root + root]]),
      table('crypto.x509.parse_and_verify_certificates_with_options', [
        [full, { CurrentTime: T2025 }], [full, { CurrentTime: T2040 }], [full, { DNSName: 'leaf.example.org', CurrentTime: T2025 }], [full, { DNSName: 'other.example.org' }],
        [full, { KeyUsages: ['KeyUsageClientAuth'] }], [full, { KeyUsages: ['KeyUsageServerAuth', 'KeyUsageClientAuth'] }], [full, { KeyUsages: ['KeyUsageAny'] }],
        [full, { KeyUsages: ['Bogus'] }], [full, { Foo: 1 }], [full, {}], [full, { CurrentTime: 'now' }], [root + leaf, { CurrentTime: T2025 }],
      ]),
      table('crypto.x509.parse_certificate_request', [[k.csrPem], [b64(k.csrPem)], [derB64(k.csrPem)], ['nope'], [k.ecCertPem], [2]]),
      table('crypto.x509.parse_rsa_private_key', [[rsaPkcs1], [b64(rsaPkcs1)], [rsaPkcs8], [ecSec1], ['x'], ['']]),
      table('crypto.parse_private_keys', [[rsaPkcs1], [rsaPkcs8], [ecSec1], [ecPkcs8], [edPkcs8], [rsaPkcs1 + ecSec1], [b64(ecPkcs8)], [''], ['x'], [k.ecCertPem]]),
      table('crypto.x509.parse_keypair', [[k.rsaCertPem, rsaPkcs1], [k.rsaCertPem, rsaPkcs8], [b64(k.rsaCertPem), b64(rsaPkcs1)], [k.rsaCertPem, ecSec1], ['x', rsaPkcs1], [k.rsaCertPem, 'y']]),
    ],
  }
}
