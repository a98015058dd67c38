import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cleanPath, isAncestorOf, rootContains, rootsOverlap } from '../../src/policy/bundle.js'
import { runBounded } from '../helpers/bounded.js'

test('cleanPath trims the slashes OPA tolerates around a path', () => {
  assert.equal(cleanPath('/a/b/'), 'a/b')
  assert.equal(cleanPath('//a'), 'a')
  assert.equal(cleanPath('/'), '')
  assert.equal(cleanPath('a//b'), 'a//b')
  assert.equal(cleanPath(''), '')
})

test('cleanPath of a request path with a long inner run of slashes is one pass (a regex trim was quadratic)', () => {
  const bounded = runBounded(`import { cleanPath } from './src/policy/bundle.ts'
    process.stdout.write(String(cleanPath('/a' + '/'.repeat(1_000_000) + 'b/').length))`)
  assert.deepEqual(bounded, { ok: true, stdout: String(1_000_002) })
})

test('a root owns itself and what lies below it, never a sibling sharing its prefix', () => {
  assert.equal(rootContains('a', 'a'), true)
  assert.equal(rootContains('a', 'a/b'), true)
  assert.equal(rootContains('a', 'ab'), false)
  assert.equal(rootContains('', 'anything/at/all'), true)
})

test('roots overlap when either owns the other; a shared string prefix is not an overlap', () => {
  assert.equal(rootsOverlap('a', 'a/b'), true)
  assert.equal(rootsOverlap('a/b', 'a'), true)
  assert.equal(rootsOverlap('', 'x'), true)
  assert.equal(rootsOverlap('a', 'ab'), false)
})

test('isAncestorOf: a path strictly above a root', () => {
  assert.equal(isAncestorOf('a', 'a/b'), true)
  assert.equal(isAncestorOf('', 'a'), true)
  assert.equal(isAncestorOf('a', 'a'), false)
  assert.equal(isAncestorOf('a', 'ab/c'), false)
  assert.equal(isAncestorOf('a', ''), false)
})
