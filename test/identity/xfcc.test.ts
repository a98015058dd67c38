import { before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { assertUnambiguous, MAX_XFCC_ELEMENTS, parseXfcc, parseXfccPairs, trustedProxyMatcher } from '../../src/identity/xfcc.js'
import { makeCa, makeLeaf, pemOf, urlEncodePem, type Issued } from './support/pki.js'

const MALFORMED = 'PORTCULLIS_IDENTITY_MALFORMED'

test('Envoy example: one element with every key', () => {
  const h = 'By=spiffe://lyft.com/frontend;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=spiffe://lyft.com/testclient;DNS=lyft.com;DNS=www.lyft.com'
  const [el] = parseXfcc(h)
  assert.deepEqual(el, {
    by: ['spiffe://lyft.com/frontend'],
    hash: '468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688',
    subject: '/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client',
    uri: ['spiffe://lyft.com/testclient'],
    dns: ['lyft.com', 'www.lyft.com'],
  })
})

test('several elements; keys are case-insensitive; Cert and Chain are URL-decoded', () => {
  const pem = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'
  const h = `By=spiffe://a/x;URI=spiffe://a/one,bY=spiffe://a/y;cert=${encodeURIComponent(pem)};CHAIN=${encodeURIComponent(pem + pem)};uri=spiffe://a/two`
  const els = parseXfcc(h)
  assert.equal(els.length, 2)
  assert.deepEqual(els[0]?.uri, ['spiffe://a/one'])
  assert.equal(els[1]?.cert, pem)
  assert.equal(els[1]?.chain, pem + pem)
  assert.deepEqual(els[1]?.by, ['spiffe://a/y'])
})

test('quoted values keep commas, semicolons, equals signs and escaped quotes inside', () => {
  const h = 'Subject="CN=a\\",Cert=evil;URI=spiffe://evil/x, O=b";URI=spiffe://good/x'
  const els = parseXfcc(h)
  assert.equal(els.length, 1)
  assert.equal(els[0]?.subject, 'CN=a",Cert=evil;URI=spiffe://evil/x, O=b')
  assert.equal(els[0]?.cert, undefined)
  assert.deepEqual(els[0]?.uri, ['spiffe://good/x'])
  assert.deepEqual(parseXfccPairs('Subject="a\\\\b"'), [[['subject', 'a\\b']]])
})

test('injected quotes and commas that break the grammar are MALFORMED', () => {
  const bad = [
    'Subject="CN=a',
    'Subject="CN=a\\"',
    'Subject=CN="a"',
    'URI=spiffe://a/x"',
    'URI=spiffe://a/x;',
    ',URI=spiffe://a/x',
    'URI=spiffe://a/x,',
    'URI',
    '=x',
    'Subject="a"b;URI=spiffe://a/x',
    'Hash=a=b',
    'Cert=%E0%A4%A',
    'Cert=a;Cert=b',
    '',
  ]
  for (const h of bad) assert.throws(() => parseXfcc(h), { code: MALFORMED }, h)
})

test('oversized header and too many elements are MALFORMED', () => {
  assert.throws(() => parseXfcc('URI=' + 'a'.repeat(70 * 1024)), { code: MALFORMED })
  assert.throws(() => parseXfcc(Array.from({ length: 40 }, () => 'URI=spiffe://a/x').join(',')), { code: MALFORMED })
})

test(`exactly ${MAX_XFCC_ELEMENTS} elements parse; one more is MALFORMED`, () => {
  const elements = (n: number): string => Array.from({ length: n }, (_, i) => `URI=spiffe://a/${i}`).join(',')
  assert.equal(parseXfcc(elements(MAX_XFCC_ELEMENTS)).length, MAX_XFCC_ELEMENTS)
  assert.throws(() => parseXfcc(elements(MAX_XFCC_ELEMENTS + 1)), { code: MALFORMED })
})

describe('assertUnambiguous: Envoy writes URI= and DNS= unquoted', () => {
  const VICTIM = 'spiffe://example.org/ns/shop/sa/frontend'
  let ca: Issued
  let victim: Issued
  let keys: CryptoKeyPair
  before(async () => {
    ca = await makeCa({ name: 'partner CA' })
    victim = await makeLeaf({ issuer: ca, uris: [VICTIM] })
    keys = victim.keys
  })

  /** Envoy's element for a client certificate (SANITIZE_SET, cert and uri/dns details), byte for byte as Envoy builds it. */
  const envoyElement = (leaf: Issued, uris: string[], dns: string[] = []): string =>
    [`By=spiffe://example.org/envoy`, `Cert="${urlEncodePem(leaf.pem)}"`, ...uris.map((u) => `URI=${u}`), ...dns.map((d) => `DNS=${d}`)].join(';')

  test('a normal multi-element APPEND_FORWARD header is accepted', async () => {
    const gateway = await makeLeaf({ issuer: ca, uris: ['spiffe://example.org/ns/edge/sa/gateway'], dns: ['gw.example.org'], keys })
    const h = `${envoyElement(gateway, ['spiffe://example.org/ns/edge/sa/gateway'], ['gw.example.org'])},${envoyElement(victim, [VICTIM])}`
    const els = parseXfcc(h)
    assert.equal(els.length, 2)
    assert.doesNotThrow(() => assertUnambiguous(els))
    // Cert without URI/DNS details (uri: false) is fine too
    assert.doesNotThrow(() => assertUnambiguous(parseXfcc(`Cert="${urlEncodePem(victim.pem)}"`)))
  })

  test('an element without a certificate (a hop without cert: true) refuses the header: its URI= may be a client\'s SAN that appended an element', async () => {
    // Envoy with uri: true but cert: false writes the attacker's SAN unquoted; the split leaves a
    // certificate-less element followed by one carrying the victim's public certificate
    const uri = `https://partner.example/a,Cert="${urlEncodePem(victim.pem)}"`
    const els = parseXfcc(`By=spiffe://example.org/envoy;URI=${uri}`)
    assert.equal(els.length, 2)
    assert.equal(els[1]?.cert, victim.pem)
    assert.throws(() => assertUnambiguous(els), { code: MALFORMED })
    // two appended elements: the one before the used one carries a certificate, the split one still has none
    assert.throws(() => assertUnambiguous(parseXfcc(`By=spiffe://example.org/envoy;URI=${uri},Cert="${urlEncodePem(victim.pem)}"`)), { code: MALFORMED })
    // an earlier hop's element without Cert, before proper ones: refused too
    assert.throws(() => assertUnambiguous(parseXfcc(`By=spiffe://x/y;URI=spiffe://x/z,${envoyElement(victim, [VICTIM])}`)), { code: MALFORMED })
  })

  test('the reviewer\'s attack: a URI SAN that appends a Cert of someone else is refused, whichever element is used', async () => {
    const uri = `https://partner.example/a,Cert="${urlEncodePem(victim.pem)}"`
    const attacker = await makeLeaf({ issuer: ca, uris: [uri], keys })
    const els = parseXfcc(envoyElement(attacker, [uri]))
    // the split Envoy never meant: two elements, the last one the victim's certificate
    assert.equal(els.length, 2)
    assert.equal(els[1]?.cert, victim.pem)
    assert.throws(() => assertUnambiguous(els), { code: MALFORMED })
  })

  test('any of , ; " = in any URI or DNS SAN of any element\'s certificate refuses the header (the class, not one input)', async () => {
    for (const ch of [',', ';', '"', '=']) {
      for (const kind of ['uri', 'dns'] as const) {
        const name = kind === 'uri' ? `https://partner.example/a${ch}b` : `a${ch}b.example`
        const leaf = await makeLeaf({ issuer: ca, uris: kind === 'uri' ? ['spiffe://example.org/x', name] : ['spiffe://example.org/x'], dns: kind === 'dns' ? [name] : [], keys })
        // in an element that does not write the SAN (uri/dns details off), before the element used
        const h = `Cert="${urlEncodePem(leaf.pem)}",${envoyElement(victim, [VICTIM])}`
        assert.throws(() => assertUnambiguous(parseXfcc(h)), { code: MALFORMED }, `${kind} ${ch}`)
        // in Chain only (cert: false, chain: true)
        assert.throws(() => assertUnambiguous(parseXfcc(`Chain="${urlEncodePem(pemOf(leaf, ca))}"`)), { code: MALFORMED }, `chain ${kind} ${ch}`)
      }
    }
  })

  test('URI= as every Envoy release writes it is accepted: all URI SANs, only the first (older releases), an empty URI= for a certificate without one', async () => {
    const two = await makeLeaf({ issuer: ca, uris: ['spiffe://example.org/a', 'https://example.org/b'], keys })
    assert.doesNotThrow(() => assertUnambiguous(parseXfcc(envoyElement(two, ['spiffe://example.org/a', 'https://example.org/b']))))
    assert.doesNotThrow(() => assertUnambiguous(parseXfcc(envoyElement(two, ['spiffe://example.org/a']))))
    const none = await makeLeaf({ issuer: ca, uris: [], dns: ['svc.example.org'], keys })
    assert.doesNotThrow(() => assertUnambiguous(parseXfcc(`${envoyElement(none, [''], ['svc.example.org'])},${envoyElement(victim, [VICTIM])}`)))
    // but not the second alone, nor an empty URI= for a certificate that has one
    assert.throws(() => assertUnambiguous(parseXfcc(envoyElement(two, ['https://example.org/b']))), { code: MALFORMED })
    assert.throws(() => assertUnambiguous(parseXfcc(envoyElement(victim, ['']))), { code: MALFORMED })
  })

  test('URI= / DNS= values that are not the element\'s certificate\'s SANs are refused', async () => {
    // what a SAN with ";Cert=" makes of a proxy that writes no Cert of its own: one element whose URI is not the Cert's
    assert.throws(() => assertUnambiguous(parseXfcc(`By=spiffe://example.org/envoy;URI=https://partner.example/a;Cert="${urlEncodePem(victim.pem)}"`)), { code: MALFORMED })
    assert.throws(() => assertUnambiguous(parseXfcc(`${envoyElement(victim, [VICTIM])};URI=spiffe://example.org/extra`)), { code: MALFORMED })
    assert.throws(() => assertUnambiguous(parseXfcc(envoyElement(victim, [VICTIM], ['extra.example']))), { code: MALFORMED })
  })

  test('a Cert that is not a certificate is MALFORMED', () => {
    assert.throws(() => assertUnambiguous(parseXfcc(`Cert="${encodeURIComponent('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')}"`)), { code: MALFORMED })
  })
})

test('trusted proxies: addresses and CIDRs, IPv4, IPv6 and IPv4-mapped IPv6', () => {
  const trusted = trustedProxyMatcher(['10.0.0.0/8', '192.168.1.7', 'fd00::/8', '::1'])
  assert.equal(trusted('10.1.2.3'), true)
  assert.equal(trusted('::ffff:10.1.2.3'), true)
  assert.equal(trusted('192.168.1.7'), true)
  assert.equal(trusted('192.168.1.8'), false)
  assert.equal(trusted('fd12::1'), true)
  assert.equal(trusted('::1'), true)
  assert.equal(trusted('fe80::1'), false)
  assert.equal(trusted('11.0.0.1'), false)
  assert.equal(trusted(undefined), false)
  assert.equal(trusted(''), false)
  assert.equal(trusted('not-an-ip'), false)
})
