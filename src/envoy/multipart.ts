/**
 * multipart/form-data as opa-envoy-plugin reads it (envoyauth/request.go getParsedBody): Go's
 * mime.ParseMediaType for the request's Content-Type and each part's Content-Disposition, and
 * Go's mime/multipart Reader.NextPart for the parts — its boundary lines (transport padding
 * after a boundary, LF-only line ends when the first delimiter ends so), its part headers
 * (textproto: folded lines joined, keys case-insensitive), quoted-printable parts decoded, the
 * raw bytes of every other part kept (no charset transcoding). A parser that reads a body
 * differently from the reference decides on other fields than the reference would: a part
 * it drops is a field a deny rule never sees. Written out here because no npm parser follows
 * Go's reading (busboy, used before, dropped the parts after a padded boundary line and
 * transcoded by a part's charset).
 */

/** Go's mime tspecials (RFC 2045) */
const TSPECIALS = new Set('()<>@,;:\\"/[]?='.split(''))

function isTokenChar (c: string): boolean {
  const code = c.charCodeAt(0)
  return code > 0x20 && code < 0x7f && !TSPECIALS.has(c)
}

function isSpace (c: string | undefined): boolean {
  // unicode.IsSpace on the ASCII range that can appear here (and U+0085, U+00A0)
  return c !== undefined && /[\t\n\v\f\r \u0085\u00A0]/.test(c)
}

function trimLeftSpace (s: string): string {
  let i = 0
  while (i < s.length && isSpace(s[i])) i++
  return s.slice(i)
}

function consumeToken (v: string): [string, string] {
  let i = 0
  while (i < v.length && isTokenChar(v[i] as string)) i++
  return [v.slice(0, i), v.slice(i)]
}

function consumeValue (v: string): [string, string] {
  if (v === '') return ['', v]
  if (v[0] !== '"') return consumeToken(v)
  let out = ''
  for (let i = 1; i < v.length; i++) {
    const r = v[i] as string
    if (r === '"') return [out, v.slice(i + 1)]
    // an unnecessary backslash escape is a literal backslash (MSIE file paths), as in Go
    if (r === '\\' && i + 1 < v.length && TSPECIALS.has(v[i + 1] as string)) { out += v[i + 1] as string; i++; continue }
    if (r === '\r' || r === '\n') return ['', v]
    out += r
  }
  return ['', v]
}

function consumeMediaParam (v: string): [string, string, string] {
  let rest = trimLeftSpace(v)
  if (!rest.startsWith(';')) return ['', '', v]
  rest = trimLeftSpace(rest.slice(1))
  let param: string
  ;[param, rest] = consumeToken(rest)
  param = param.toLowerCase()
  if (param === '') return ['', '', v]
  rest = trimLeftSpace(rest)
  if (!rest.startsWith('=')) return ['', '', v]
  rest = trimLeftSpace(rest.slice(1))
  const [value, rest2] = consumeValue(rest)
  if (value === '' && rest2 === rest) return ['', '', v]
  return [param, value, rest2]
}

function checkMediaTypeDisposition (s: string): void {
  const [typ, rest] = consumeToken(s)
  if (typ === '') throw new Error('mime: no media type')
  if (rest === '') return
  if (!rest.startsWith('/')) throw new Error('mime: expected slash after first token')
  const [subtype, rest2] = consumeToken(rest.slice(1))
  if (subtype === '') throw new Error('mime: expected token after slash')
  if (rest2 !== '') throw new Error('mime: unexpected content after media subtype')
}

/** percent-decoding of an RFC 2231 value; undefined on a bad escape */
function percentHexUnescape (s: string): Buffer | undefined {
  const out: number[] = []
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%') {
      const h = s.slice(i + 1, i + 3)
      if (!/^[0-9a-fA-F]{2}$/.test(h)) return undefined
      out.push(Number.parseInt(h, 16))
      i += 2
    } else out.push(s.charCodeAt(i) & 0xff)
  }
  return Buffer.from(out)
}

function decode2231Enc (v: string): string | undefined {
  const parts = v.split("'")
  if (parts.length !== 3) return undefined
  const charset = (parts[0] as string).toLowerCase()
  if (charset === '') return undefined
  if (charset !== 'us-ascii' && charset !== 'utf-8') return undefined
  const bytes = percentHexUnescape(parts[2] as string)
  return bytes === undefined ? undefined : bytes.toString('utf8')
}

/**
 * Go's mime.ParseMediaType: the lowercased media type and its parameters (RFC 2231 continuations
 * and charsets us-ascii / utf-8 decoded). Throws on what Go refuses (a bad media type, a
 * parameter without `=`, a duplicate parameter name).
 */
export function parseMediaType (v: string): { mediaType: string, params: Map<string, string> } {
  const semi = v.indexOf(';')
  const base = semi === -1 ? v : v.slice(0, semi)
  const mediaType = base.trim().toLowerCase()
  checkMediaTypeDisposition(mediaType)
  const params = new Map<string, string>()
  const continuation = new Map<string, Map<string, string>>()
  let rest = v.slice(base.length)
  while (rest.length > 0) {
    rest = trimLeftSpace(rest)
    if (rest.length === 0) break
    const [key, value, r] = consumeMediaParam(rest)
    if (key === '') {
      if (r.trim() === ';') break // a trailing semicolon is ignored
      throw new Error('mime: invalid media parameter')
    }
    let pmap = params
    const star = key.indexOf('*')
    if (star !== -1) {
      const baseName = key.slice(0, star)
      pmap = continuation.get(baseName) ?? new Map<string, string>()
      continuation.set(baseName, pmap)
    }
    const existing = pmap.get(key)
    if (existing !== undefined && existing !== value) throw new Error('mime: duplicate parameter name')
    pmap.set(key, value)
    rest = r
  }
  for (const [key, pieces] of continuation) {
    const single = pieces.get(`${key}*`)
    if (single !== undefined) {
      const dec = decode2231Enc(single)
      if (dec !== undefined) params.set(key, dec)
      continue
    }
    let out = ''
    let valid = false
    for (let n = 0; ; n++) {
      const simple = pieces.get(`${key}*${n}`)
      if (simple !== undefined) { valid = true; out += simple; continue }
      const encoded = pieces.get(`${key}*${n}*`)
      if (encoded === undefined) break
      valid = true
      if (n === 0) {
        const dec = decode2231Enc(encoded)
        if (dec !== undefined) out += dec
      } else {
        const dec = percentHexUnescape(encoded)
        if (dec !== undefined) out += dec.toString('utf8')
      }
    }
    if (valid) params.set(key, out)
  }
  return { mediaType, params }
}

/** A part: its headers (keys lowercased, values as Go's textproto leaves them) and its body bytes. */
export interface Part { headers: Map<string, string[]>, body: Buffer }

function skipLwsp (b: Buffer, at: number): number {
  while (at < b.length && (b[at] === 0x20 || b[at] === 0x09)) at++
  return at
}

/** Header lines a part may have: Go's mime/multipart maxMIMEHeaders (more is "message too large"). */
const MAX_PART_HEADERS = 10_000

/** `s` without a trailing `\n` or `\r\n`. */
function chompLine (s: string): string {
  if (s.endsWith('\r\n')) return s.slice(0, -2)
  if (s.endsWith('\n')) return s.slice(0, -1)
  return s
}

/** `s` without trailing spaces and tabs (an index loop: `/[ \t]+$/` is quadratic on an inner run). */
function trimSpaceTabEnd (s: string): string {
  let b = s.length
  while (b > 0 && (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09)) b--
  return s.slice(0, b)
}

/** `s` without leading and trailing spaces and tabs. */
function trimSpaceTab (s: string): string {
  let a = 0
  while (a < s.length && (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09)) a++
  return trimSpaceTabEnd(s.slice(a))
}

/** Go's quotedprintable.Reader (lax: lowercase hex, trailing white space before a line end dropped). */
function decodeQuotedPrintable (b: Buffer): Buffer {
  const out: number[] = []
  const text = b.toString('latin1')
  const lines = text.split(/(?<=\n)/)
  for (const raw of lines) {
    const hasLf = raw.endsWith('\n')
    let line = hasLf ? raw.slice(0, -1) : raw
    if (line.endsWith('\r')) line = line.slice(0, -1)
    line = trimSpaceTabEnd(line)
    let soft = false
    if (line.endsWith('=')) { soft = true; line = line.slice(0, -1) }
    for (let i = 0; i < line.length; i++) {
      const c = line[i] as string
      if (c === '=') {
        const h = line.slice(i + 1, i + 3)
        if (!/^[0-9a-fA-F]{2}$/.test(h)) throw new Error(`multipart: invalid quoted-printable escape ${JSON.stringify(line.slice(i, i + 3))}`)
        out.push(Number.parseInt(h, 16))
        i += 2
      } else out.push(c.charCodeAt(0))
    }
    if (hasLf && !soft) out.push(0x0d, 0x0a)
  }
  return Buffer.from(out)
}

/**
 * The parts of a multipart body as Go's Reader.NextPart reads them. Throws (Error) where Go
 * returns an error (a line where a boundary was expected, no closing delimiter, a malformed
 * part header, a bad quoted-printable escape).
 */
export function readParts (body: Buffer, boundary: string): Part[] {
  const dashBoundary = Buffer.from(`--${boundary}`, 'latin1')
  const dashBoundaryDash = Buffer.from(`--${boundary}--`, 'latin1')
  let nl = Buffer.from('\r\n')
  let nlDashBoundary = Buffer.from(`\r\n--${boundary}`, 'latin1')
  const parts: Part[] = []
  let at = 0
  let partsRead = 0
  let expectNewPart = false
  const readLine = (): Buffer | undefined => {
    if (at >= body.length) return undefined
    const nlAt = body.indexOf(0x0a, at)
    const end = nlAt === -1 ? body.length : nlAt + 1
    const line = body.subarray(at, end)
    at = end
    return line
  }
  const isBoundaryDelimiterLine = (line: Buffer): boolean => {
    if (!line.subarray(0, dashBoundary.length).equals(dashBoundary)) return false
    const rest = line.subarray(skipLwsp(line, dashBoundary.length))
    if (partsRead === 0 && rest.length === 1 && rest[0] === 0x0a) {
      nl = Buffer.from('\n')
      nlDashBoundary = Buffer.from(`\n--${boundary}`, 'latin1')
    }
    return rest.equals(nl)
  }
  const isFinalBoundary = (line: Buffer): boolean => {
    if (!line.subarray(0, dashBoundaryDash.length).equals(dashBoundaryDash)) return false
    const rest = line.subarray(skipLwsp(line, dashBoundaryDash.length))
    return rest.length === 0 || rest.equals(nl)
  }
  for (;;) {
    const line = readLine()
    if (line === undefined) {
      // Go: io.EOF before the final boundary
      throw new Error('multipart: NextPart: EOF')
    }
    if (isBoundaryDelimiterLine(line)) {
      partsRead++
      const headers = readHeaders()
      const bodyStart = at
      // the part ends at nl + --boundary followed by LWSP, CR, LF or "--" (matchAfterPrefix)
      let search = at
      let end = -1
      for (;;) {
        const i = body.indexOf(nlDashBoundary, search)
        if (i === -1) break
        const c = body[i + nlDashBoundary.length]
        if (c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a || (c === 0x2d && body[i + nlDashBoundary.length + 1] === 0x2d)) { end = i; break }
        search = i + 1
      }
      if (end === -1) throw new Error('multipart: NextPart: EOF')
      let data: Buffer = body.subarray(bodyStart, end)
      const cte = headers.get('content-transfer-encoding')?.[0]
      if (cte !== undefined && cte.toLowerCase() === 'quoted-printable') {
        headers.delete('content-transfer-encoding')
        data = decodeQuotedPrintable(data)
      }
      parts.push({ headers, body: Buffer.from(data) })
      at = end + nl.length
      expectNewPart = false
      continue
    }
    if (isFinalBoundary(line)) return parts
    if (expectNewPart) throw new Error(`multipart: expecting a new Part; got line ${JSON.stringify(line.toString('latin1'))}`)
    if (partsRead === 0) continue // the preamble
    if (line.equals(nl)) { expectNewPart = true; continue }
    throw new Error(`multipart: unexpected line in Next(): ${JSON.stringify(line.toString('latin1'))}`)
  }

  /**
   * textproto.Reader.ReadMIMEHeader from `at`: lines up to an empty one; folded lines joined.
   * At most MAX_PART_HEADERS header lines, as Go's multipart reader allows (more: "message too
   * large"). Linear in the part's header bytes: trims by index, folded lines joined once,
   * repeated keys appended in place.
   */
  function readHeaders (): Map<string, string[]> {
    const headers = new Map<string, string[]>()
    let first = true
    let count = 0
    for (;;) {
      const raw = readLine()
      if (raw === undefined) throw new Error('multipart: unexpected EOF in part headers')
      let line = chompLine(raw.toString('latin1'))
      if (line === '') return headers
      if (first && (line[0] === ' ' || line[0] === '\t')) throw new Error(`malformed MIME header initial line: ${JSON.stringify(line)}`)
      first = false
      // continuation lines (leading space or tab) are joined with one space
      if (at < body.length && (body[at] === 0x20 || body[at] === 0x09)) {
        const pieces = [trimSpaceTabEnd(line)]
        while (at < body.length && (body[at] === 0x20 || body[at] === 0x09)) {
          pieces.push(trimSpaceTab(chompLine((readLine() as Buffer).toString('latin1'))))
        }
        line = pieces.join(' ')
      }
      const colon = line.indexOf(':')
      if (colon <= 0) throw new Error(`malformed MIME header line: ${JSON.stringify(line)}`)
      const key = line.slice(0, colon)
      if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(key)) throw new Error(`malformed MIME header line: ${JSON.stringify(line)}`)
      if (++count > MAX_PART_HEADERS) throw new Error('multipart: message too large')
      const value = trimSpaceTab(line.slice(colon + 1))
      const k = key.toLowerCase()
      const list = headers.get(k)
      const v = Buffer.from(value, 'latin1').toString('utf8')
      if (list === undefined) headers.set(k, [v])
      else list.push(v)
    }
  }
}

/** p.FormName(): the Content-Disposition's `name` when its type is form-data; '' otherwise or when it does not parse. */
export function formName (part: Part): string {
  const v = part.headers.get('content-disposition')?.[0] ?? ''
  try {
    const { mediaType, params } = parseMediaType(v)
    if (mediaType !== 'form-data') return ''
    return params.get('name') ?? ''
  } catch {
    return ''
  }
}
