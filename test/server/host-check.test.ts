/**
 * The console's Host check (src/server/plugins/host-check.ts): parsing of Host values, which
 * names a connection's local address allows, console.allowed_hosts, and — as a property over
 * generated names — that no name outside the allowed set is ever answered (the class of bug
 * behind DNS rebinding). The over-the-wire test is console-hardening.test.ts; `:authority` is
 * checked here with a request object because this server speaks HTTP/1.1 only (an HTTP/1.1
 * parser refuses a header named `:authority`), so no real client can send one to it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { FastifyRequest } from 'fastify'
import { PortcullisError } from '../../src/errors.js'
import { hostCheck, hostAllowed, parseAllowedHosts, parseHostName } from '../../src/server/plugins/host-check.js'

const LOOP = { address: '127.0.0.1', port: 8181 }
const allow = (value: string, local: { address: string, port: number } = LOOP, allowed: string[] = [], listenHost?: string, https = false): boolean => {
  const name = parseHostName(value)
  return name !== undefined && hostAllowed(name, local, parseAllowedHosts(allowed), { ...(listenHost !== undefined ? { listenHost } : {}), https })
}

test('Host values are parsed as uri-host [":" port]; anything else is not a host', () => {
  assert.deepEqual(parseHostName('LocalHost:8181'), { host: 'localhost', port: 8181 })
  assert.deepEqual(parseHostName('example.org.'), { host: 'example.org', port: undefined })
  assert.deepEqual(parseHostName('[0:0:0:0:0:0:0:1]:1'), { host: '::1', port: 1 })
  assert.deepEqual(parseHostName('[::ffff:127.0.0.1]'), { host: '127.0.0.1', port: undefined })
  for (const bad of ['', ':80', 'a b', 'a:b', 'a:99999', '[::1', '[nothost]:1', '::1', 'x@y', 'a/b', 'a:1:2', '-a.', 'a..b', 'a'.repeat(301)]) {
    assert.equal(parseHostName(bad), undefined, bad)
  }
})

test('on a loopback connection: the loopback names with any port (a tunnel presents its own) or none; no other name', () => {
  for (const v of ['localhost', 'localhost:8181', '127.0.0.1', '127.0.0.1:8181', '[::1]', '[::1]:8181', 'localhost:8182', '127.0.0.1:80', '[::1]:1']) assert.equal(allow(v), true, v)
  for (const v of ['localhost.example', 'example.org', 'example.org:8181', '127.0.0.2', 'localhost6']) assert.equal(allow(v), false, v)
  // the same names on a connection that did not arrive on loopback are not this server's
  assert.equal(allow('localhost:8181', { address: '10.0.0.5', port: 8181 }), false)
  // an IPv4-mapped local address is loopback too
  assert.equal(allow('localhost:8181', { address: '::ffff:127.0.0.1', port: 8181 }), true)
})

test('the listen address: the local address and server.addr\'s name, with this port or none on the default port', () => {
  const lan = { address: '10.0.0.5', port: 8181 }
  assert.equal(allow('10.0.0.5:8181', lan), true)
  assert.equal(allow('10.0.0.5', lan), false)
  assert.equal(allow('10.0.0.5', { address: '10.0.0.5', port: 80 }), true)
  assert.equal(allow('10.0.0.5', { address: '10.0.0.5', port: 443 }, [], undefined, true), true)
  assert.equal(allow('authz.internal:8181', lan, [], 'authz.internal'), true)
  assert.equal(allow('authz.internal:8182', lan, [], 'authz.internal'), false)
  // a wildcard listen address is not a name
  assert.equal(allow('0.0.0.0:8181', lan, [], '0.0.0.0'), false)
  assert.equal(allow('[::]:8181', lan, [], '::'), false)
  assert.equal(allow('[fd00::5]:8181', { address: 'fd00::5', port: 8181 }), true)
})

test('admin.allowed_hosts: a name matches any port, name:port only that port; a bad entry fails start-up', () => {
  assert.equal(allow('console.example.org:9999', LOOP, ['console.example.org']), true)
  assert.equal(allow('console.example.org', LOOP, ['Console.Example.Org.']), true)
  assert.equal(allow('pinned.example.org:1', LOOP, ['pinned.example.org:1']), true)
  assert.equal(allow('pinned.example.org:2', LOOP, ['pinned.example.org:1']), false)
  assert.equal(allow('pinned.example.org', LOOP, ['pinned.example.org:80']), true)
  assert.equal(allow('sub.console.example.org', LOOP, ['console.example.org']), false)
  assert.throws(() => parseAllowedHosts(['not a host']), (e: unknown) => e instanceof PortcullisError && e.code === 'PORTCULLIS_CONFIG_INVALID')
  // an IPv6 zone identifier is an interface, not a name: refused as an entry, never matched (and never a TypeError)
  assert.throws(() => parseAllowedHosts(['[fe80::1%eth0]']), (e: unknown) => e instanceof PortcullisError && e.code === 'PORTCULLIS_CONFIG_INVALID')
  assert.equal(parseHostName('[fe80::1%eth0]:80'), undefined)
  assert.equal(allow('[fe80::1]', { address: 'fe80::1%eth0', port: 80 }, []), false)
})

test('property: a generated name outside the allowed set is never answered, on any connection', () => {
  const label = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,10}$/)
  const name = fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => ls.join('.'))
  const allowed = ['console.example.org']
  const own = (n: string, address: string): boolean => ['localhost', '127.0.0.1', '::1', 'console.example.org', address].includes(n)
  fc.assert(fc.property(name, fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }), fc.constantFrom('127.0.0.1', '10.0.0.5', '::1'), fc.integer({ min: 1, max: 65535 }), (n, port, address, localPort) => {
    const value = port === undefined ? n : `${n}:${port}`
    const answered = allow(value, { address, port: localPort }, allowed)
    if (!own(n, address)) assert.equal(answered, false, `${value} on ${address}:${localPort}`)
  }), { numRuns: 2000 })
})

test('the hook checks :authority as well as Host, and refuses a request with neither', async () => {
  const check = hostCheck({ allowedHosts: ['console.example.org'] })
  const req = (headers: Record<string, string>): FastifyRequest => ({ headers, raw: { socket: { localAddress: '127.0.0.1', localPort: 8181 } } }) as unknown as FastifyRequest
  await check(req({ host: 'localhost:8181' }))
  await check(req({ ':authority': 'console.example.org' }))
  const refused = (e: unknown): boolean => e instanceof PortcullisError && e.code === 'PORTCULLIS_HOST_REJECTED' && e.status === 421
  await assert.rejects(check(req({ host: 'localhost:8181', ':authority': 'attacker.example' })), refused)
  await assert.rejects(check(req({ ':authority': 'attacker.example:8181' })), refused)
  await assert.rejects(check(req({})), refused)
})
