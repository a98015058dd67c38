/**
 * docs/identity.md stays true: every `identity:` YAML example in it is a valid configuration,
 * and every error code it lists exists in the registry (and every identity code is listed).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { codes } from '../../src/errors.js'
import { validateIdentityConfig } from '../../src/config/identity.js'

const doc = readFileSync(new URL('../../docs/identity.md', import.meta.url), 'utf8')

test('every identity YAML example validates', () => {
  const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string).filter((b) => b.startsWith('identity:'))
  assert.ok(blocks.length >= 6, `found ${blocks.length} identity examples`)
  for (const b of blocks) {
    const raw = (parseYaml(b) as { identity: unknown }).identity
    assert.doesNotThrow(() => validateIdentityConfig(raw), b)
  }
})

test('the error table matches the registry', () => {
  const listed = new Set([...doc.matchAll(/`(PORTCULLIS_IDENTITY_[A-Z_]+)`/g)].map((m) => m[1] as string))
  const registered = Object.keys(codes).filter((c) => c.startsWith('PORTCULLIS_IDENTITY_') && c !== 'PORTCULLIS_IDENTITY_DENIED')
  for (const c of listed) assert.ok(c in codes, `${c} is documented but not registered`)
  for (const c of registered) assert.ok(listed.has(c), `${c} is registered but not documented`)
})
