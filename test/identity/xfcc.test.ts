import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseXfcc, parseXfccPairs, trustedProxyMatcher } from '../../src/identity/xfcc.js'

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
