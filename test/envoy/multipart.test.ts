/**
 * multipart/form-data as Go reads it (src/envoy/multipart.ts): the cases where busboy, used
 * before, read a body differently from opa-envoy-plugin's Go (each checked side by side against
 * a real opa-envoy-plugin during the review that found them), asserted through parsedBody.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parsedBody } from '../../src/envoy/input.js'
import { parseMediaType, readParts } from '../../src/envoy/multipart.js'
import { isPortcullisError } from '../../src/errors.js'
import { runBounded } from '../helpers/bounded.js'

const invalidRequest = (err: unknown): boolean => isPortcullisError(err) && err.code === 'PORTCULLIS_ENVOY_REQUEST_INVALID'
const form = async (body: string | Buffer, contentType = 'multipart/form-data; boundary=XX'): Promise<unknown> =>
  (await parsedBody({ 'content-type': contentType }, '', Buffer.from(body))).parsed

test('boundary lines with transport padding (spaces, tabs) are boundaries: the parts after them are read', async () => {
  assert.deepEqual(await form('--XX\r\nContent-Disposition: form-data; name="role"\r\n\r\nuser\r\n--XX \r\nContent-Disposition: form-data; name="role"\r\n\r\nadmin\r\n--XX--\r\n'), { role: ['user', 'admin'] })
  assert.deepEqual(await form('--XX\t\r\nContent-Disposition: form-data; name="role"\r\n\r\nadmin\r\n--XX--  \r\n'), { role: ['admin'] })
})

test('a quoted-printable part is decoded; other parts keep their bytes whatever charset they name', async () => {
  assert.deepEqual(await form('--XX\r\nContent-Disposition: form-data; name="role"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nad=6Din\r\n--XX--\r\n'), { role: ['admin'] })
  assert.deepEqual(await form('--XX\r\nContent-Disposition: form-data; name="role"\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\nad=\r\nmin\r\n--XX--\r\n'), { role: ['admin'] })
  const utf16 = Buffer.concat([Buffer.from('--XX\r\nContent-Disposition: form-data; name="role"\r\nContent-Type: text/plain; charset=utf-16le\r\n\r\n'), Buffer.from('admin'), Buffer.from('\r\n--XX--\r\n')])
  assert.deepEqual(await form(utf16), { role: ['admin'] })
  assert.deepEqual(await form('--XX\r\nContent-Disposition: form-data; name="a"\r\nContent-Transfer-Encoding: base64\r\n\r\nYWRtaW4=\r\n--XX--\r\n'), { a: ['YWRtaW4='] })
})

test('the Content-Type is parsed as Go parses it: spaces around =, quoted boundaries, a duplicate or broken parameter refuses the request', async () => {
  assert.deepEqual(await form('--XX\r\nContent-Disposition: form-data; name="role"\r\n\r\nadmin\r\n--XX--\r\n', 'multipart/form-data ; boundary = XX'), { role: ['admin'] })
  assert.deepEqual(await form('--X X\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--X X--\r\n', 'multipart/form-data; boundary="X X"'), { a: ['v'] })
  await assert.rejects(form('--XX--\r\n', 'multipart/form-data; boundary=XX; boundary=YY'), invalidRequest)
  await assert.rejects(form('--XX--\r\n', 'multipart/form-data; boundary=XX; foo'), invalidRequest)
  assert.equal(await form('--XX--\r\n', 'multipart/form-data'), null)
  assert.deepEqual([...parseMediaType('form-data; name*=UTF-8\'\'r%C3%B4le; x=1;').params], [['x', '1'], ['name', 'rôle']])
})

test('part names and types as Go reads them: RFC 2231 names, a duplicate name parameter skips the part, JSON by the header as written', async () => {
  assert.deepEqual(await form("--XX\r\nContent-Disposition: form-data; name*=UTF-8''role\r\n\r\nadmin\r\n--XX--\r\n"), { role: ['admin'] })
  assert.deepEqual(await form('--XX\r\nContent-Disposition: form-data; name="a"; name="b"\r\n\r\nv\r\n--XX--\r\n'), {})
  assert.deepEqual(await form('--XX\r\nContent-Disposition: attachment; name="a"\r\n\r\nv\r\n--XX--\r\n'), {})
  assert.deepEqual(await form('--XX\r\nContent-Disposition: form-data; name="a"\r\nContent-Type: Application/JSON\r\n\r\n{"x":1}\r\n--XX--\r\n'), { a: ['{"x":1}'] })
  assert.deepEqual(await form('--XX\r\nContent-Disposition: form-data; name="a"\r\nContent-Type: text/plain; x=application/json\r\n\r\n{"x":1}\r\n--XX--\r\n'), { a: [{ x: 1 }] })
  await assert.rejects(form('--XX\r\nContent-Disposition: form-data; name="a"\r\nContent-Type: application/json\r\n\r\n{bad\r\n--XX--\r\n'), invalidRequest)
})

test('line ends, preamble, epilogue, folded headers; a body without its closing delimiter refuses the request', async () => {
  assert.deepEqual(await form('--XX\nContent-Disposition: form-data; name="a"\n\nv\n--XX--\n'), { a: ['v'] })
  assert.deepEqual(await form('junk\r\n--XX\r\nContent-Disposition: form-data;\r\n name="role"\r\n\r\nadmin\r\n--XX--\r\n--XX\r\nContent-Disposition: form-data; name="x"\r\n\r\ny\r\n--XX--\r\n'), { role: ['admin'] })
  await assert.rejects(form('--XX\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n'), invalidRequest)
  assert.throws(() => readParts(Buffer.from('--XX\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--XX\r\nbroken header\r\n\r\nw\r\n--XX--\r\n'), 'XX'))
})

// Hostile sizes (each held the event loop for seconds to minutes: a trailing-blank regex retried
// at every blank of an inner run, a copied header list per repeat, a folded line rebuilt per
// continuation). Within a bound in a child process first (test/helpers/bounded.ts), then read here.
test('part headers: long blank runs, repeated and folded lines are read in one pass; more than 10,000 header lines refuse the request', async () => {
  const bounded = runBounded(`import { parsedBody } from './src/envoy/input.ts'
    const part = (h) => '--XX\\r\\nContent-Disposition: form-data; name="a"\\r\\n' + h + '\\r\\nv\\r\\n--XX--\\r\\n'
    const form = async (b) => JSON.stringify((await parsedBody({ 'content-type': 'multipart/form-data; boundary=XX' }, '', Buffer.from(b))).parsed)
    const out = [await form(part('X-A: b' + ' '.repeat(2_000_000) + 'c\\r\\n')), await form(part('X-A: b\\r\\n'.repeat(9_999))), await form(part('X-A: b\\r\\n' + ' c\\r\\n'.repeat(300_000)))]
    process.stdout.write(out.join(' '))`)
  assert.deepEqual(bounded, { ok: true, stdout: '{"a":["v"]} {"a":["v"]} {"a":["v"]}' })
  const part = (headers: string): string => `--XX\r\nContent-Disposition: form-data; name="a"\r\n${headers}\r\nv\r\n--XX--\r\n`
  assert.deepEqual(await form(part(`X-A: b${' '.repeat(2_000_000)}c\r\n`)), { a: ['v'] })
  assert.deepEqual(await form(part('X-A: b\r\n'.repeat(10_000 - 1))), { a: ['v'] })
  await assert.rejects(form(part('X-A: b\r\n'.repeat(10_000))), invalidRequest)
  assert.deepEqual(await form(part('X-A: b\r\n' + ' c\r\n'.repeat(300_000))), { a: ['v'] })
  // a folded Content-Disposition is joined with single spaces, as textproto joins it
  assert.deepEqual(await form('--XX\r\nContent-Disposition: form-data;\r\n   name="f" \t\r\n\r\nv\r\n--XX--\r\n'), { f: ['v'] })
  // quoted-printable: trailing blanks of a long line dropped, inner ones kept
  assert.deepEqual(await form(`--XX\r\nContent-Disposition: form-data; name="q"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\na${' '.repeat(1_000_000)}b \t\r\n--XX--\r\n`), { q: [`a${' '.repeat(1_000_000)}b`] })
})
