/** Go encoding/pem.Decode: the first PEM block in the input and what follows it. */
export interface PemBlock { type: string, headers: Record<string, string>, bytes: Buffer, rest: string }

const BEGIN = /-----BEGIN ([^\r\n-]*)-----\r?\n?/g

export function pemDecode (input: string): PemBlock | undefined {
  BEGIN.lastIndex = 0
  let m: RegExpExecArray | null
  while ((m = BEGIN.exec(input)) !== null) {
    // Go requires BEGIN at a line start.
    if (m.index > 0 && input[m.index - 1] !== '\n') continue
    const type = m[1] as string
    const bodyStart = m.index + m[0].length
    const endMarker = `-----END ${type}-----`
    const end = input.indexOf(endMarker, bodyStart)
    if (end < 0) return undefined
    let body = input.slice(bodyStart, end)
    const headers: Record<string, string> = {}
    const blank = /\r?\n\r?\n/.exec(body)
    if (blank !== null && body.slice(0, blank.index).includes(':')) {
      for (const line of body.slice(0, blank.index).split(/\r?\n/)) {
        const i = line.indexOf(':')
        if (i > 0) headers[line.slice(0, i).trim()] = line.slice(i + 1).trim()
      }
      body = body.slice(blank.index + blank[0].length)
    }
    const b64 = body.replace(/[\s]/g, '')
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) return undefined
    let after = end + endMarker.length
    if (input.startsWith('\r\n', after)) after += 2
    else if (input.startsWith('\n', after)) after += 1
    return { type, headers, bytes: Buffer.from(b64, 'base64'), rest: input.slice(after) }
  }
  return undefined
}

/** All PEM blocks of the input, in order. */
export function pemDecodeAll (input: string): PemBlock[] {
  const out: PemBlock[] = []
  let rest = input
  for (;;) {
    const b = pemDecode(rest)
    if (b === undefined) return out
    out.push(b)
    rest = b.rest
  }
}
