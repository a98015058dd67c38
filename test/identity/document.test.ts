import { test } from 'node:test'
import assert from 'node:assert/strict'
import { deepFreeze, type IdentityDocument } from '../../src/identity/document.js'

test('deepFreeze freezes nested objects and arrays so cached documents cannot change', () => {
  const doc: IdentityDocument = { type: 'oidc', source: 'header', subject: 's', expires_at: 'x', audience: ['a'], claims: { nested: { k: 1 } } }
  deepFreeze(doc)
  assert.ok(Object.isFrozen(doc))
  assert.ok(Object.isFrozen(doc.audience))
  assert.ok(Object.isFrozen((doc.claims as { nested: object }).nested))
  assert.throws(() => { (doc.audience as string[]).push('b') }, TypeError)
})
