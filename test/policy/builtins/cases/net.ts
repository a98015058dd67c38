import { table, type Group } from './types.js'

const cidrs = ['10.0.0.0/8', '10.1.2.3/8', '192.168.1.0/24', '0.0.0.0/0', '255.255.255.255/32', '1.2.3.4/33', '01.2.3.4/8', '1.2.3/8', '1.2.3.4', '1.2.3.4/',
  '1.2.3.4/-1', '1.2.3.4/08', '::/0', '2001:db8::/32', '2001:DB8::1/128', '2001:db8::1/129', '::ffff:10.0.0.0/104', 'fe80::1%eth0/64', '1:2:3:4:5:6:7:8/64',
  '1:2:3:4:5:6:7:8:9/64', '1::2::3/64', '::1.2.3.4/120', '', 'a.b.c.d/8', '2001:db8::/32 ']

/** A small seeded PRNG (mulberry32): the generated cases are the same on every run. */
function prng (seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Lists that mix bare IPv4 addresses (classful networks, left unmasked by OPA when nothing merges
 * with them), IPv4 CIDRs and IPv6 CIDRs in a few crowded regions, so that adjacency, containment
 * and duplicates all occur. IPv4-mapped IPv6 CIDRs and IPv6 ranges below 0100::/8 are left out:
 * merging those makes opa eval itself panic (see cidrMerge in src/policy/builtins/net.ts).
 */
function mergeLists (count: number): string[][] {
  const rnd = prng(8)
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)] as T
  const out: string[][] = []
  for (let i = 0; i < count; i++) {
    const list: string[] = []
    const n = 1 + Math.floor(rnd() * 6)
    for (let j = 0; j < n; j++) {
      const kind = rnd()
      if (kind < 0.35) list.push(`${pick([9, 10, 11, 126, 127, 128, 172, 191, 192, 223, 224, 255])}.${pick([0, 1, 255])}.${pick([0, 1, 2, 3])}.${Math.floor(rnd() * 256)}`)
      else if (kind < 0.75) list.push(`10.0.${Math.floor(rnd() * 4)}.${Math.floor(rnd() * 256)}/${22 + Math.floor(rnd() * 11)}`)
      else list.push(`2001:db8::${Math.floor(rnd() * 512).toString(16)}/${120 + Math.floor(rnd() * 9)}`)
    }
    out.push(list)
  }
  return out
}

export const netGroup = (): Group => ({
  name: 'net',
  switches: ['net_lookup_ip_addr'],
  tables: [
    // Resolver answers vary by machine: compare what both must see for localhost, and errors.
    { builtin: 'net.lookup_ip_addr', call: '"127.0.0.1" in net.lookup_ip_addr($0)', cases: [{ args: ['localhost'] }] },
    { builtin: 'net.lookup_ip_addr', call: 'count(net.lookup_ip_addr($0)) > 0', cases: [{ args: ['localhost'] }, { args: ['bad host name!'] }, { args: [1] }] },
    // IP literals are answered by the resolver itself, IPv6 (zoned too) as well as IPv4.
    table('net.lookup_ip_addr', [['::'], ['10.0.0.0'], ['::1'], ['::ffff:1.2.3.4'], ['2001:DB8::0:1'], ['fe80::1%eth0'], ['::1.2.3.4'], ['2001:db8:0:0:1:0:0:1']]),
    table('net.cidr_is_valid', [...cidrs.map((c) => [c]), [1], [null]]),
    table('net.cidr_expand', [['192.168.1.0/30'], ['10.0.0.1/31'], ['1.2.3.4/32'], ['2001:db8::/126'], ['::ffff:10.0.0.0/126'], ['::/127'], ['1.2.3.4'], ['x'], [1], ['fe80::a:b:0:0/127']]),
    table('net.cidr_merge', [
      [['192.0.128.0/24', '192.0.129.0/24']], [['192.0.2.0/24', '192.0.2.0/25']], [['10.0.0.1', '10.0.0.0', '10.0.0.2', '10.0.0.3']], [['10.0.0.0/8', '11.0.0.0/8']],
      [['0.0.0.0/1', '128.0.0.0/1']], [['2001:db8::/33', '2001:db8:8000::/33', '::1']], [['1.2.3.4/24', '1.2.4.0/24']], [[]], [['x']], [[1]], ['10.0.0.0/8'],
      [['10.0.0.0/8', '2001:db8::/32', '10.0.0.0/8']], [['255.255.255.255', '255.255.255.254']], [['192.168.0.1', '192.168.0.3', '192.168.0.5']],
      // Bare addresses: classful networks (net.IP.DefaultMask), unmasked unless merged; bare IPv6 is an error
      [['192.168.1.1']], [['192.168.1.1', '192.168.1.2/32']], [['10.1.2.3']], [['172.16.5.4']], [['230.1.2.3']], [['0.0.0.1']], [['10.0.0.1', '10.0.0.1']],
      [['10.0.0.1', '11.0.0.1']], [['10.0.0.1', '12.0.0.1']], [['10.1.2.3', '10.0.0.0/8']], [['10.1.2.3', '9.0.0.0/8']], [['10.1.2.3', '10.1.2.3/32']],
      [['255.1.2.3', '255.1.3.4']], [['1.2.3.4', '5.6.7.8/30']], [['::ffff:1.2.3.4']], [['::ffff:1.2.3.4', '1.2.3.5']], [['::1']], [['2001:db8::1']],
      [['2001:db8::1', '10.0.0.0/8']], [['10.0.0.1', '2001:db8::/32']], [['10.0.0.1', '2001:db8::1/128']], [['1.2.3.4/32', '1.2.3.5/32', '1.2.3.6/32']],
      [['::ffff:10.0.0.0/104']], [['::ffff:10.0.0.0/104', '10.0.0.0/8']], [['::ffff:10.0.0.0/104', '2001:db8::/32']], [['::ffff:10.0.0.0/104', '::/0']],
      [['::100/128', '::102/127']], [['2001:db8::1/128', '2001:db8::2/127']], [['2001:db8::/127', '2001:db8::2/127']],
      // Invalid entries
      [['10.0.0.1', 'x']], [['10.0.0.1', '']], [['01.2.3.4']], [['1.2.3.4/33']], [['10.0.0.1', null]], [['fe80::1%eth0']], [{ a: '10.0.0.1' }], [null],
      ...mergeLists(150).map((l) => [l]),
    ]),
    // A set argument (Rego iterates it sorted; the answer is a set either way).
    table('net.cidr_merge', [
      [['192.168.1.1']], [['10.0.0.1', '11.0.0.1']], [['10.0.0.1', '12.0.0.1', '2001:db8::/32']], [['2001:db8::1']], [['x', '10.0.0.0/8']],
      [['192.168.0.1', '192.168.0.3', '192.168.0.5']], ...mergeLists(40).map((l) => [l]),
    ], 'net.cidr_merge({e | some e in $0})'),
    table('net.cidr_contains_matches', [
      ['10.0.0.0/8', '10.1.1.1'], ['10.0.0.0/8', '11.1.1.1'], [['10.0.0.0/8', '192.168.0.0/16'], ['10.1.2.3', '192.168.1.1', '10.0.0.0/16', '10.0.0.0/7']],
      [{ a: '10.0.0.0/8', b: ['192.168.0.0/16', 5] }, ['10.1.2.3', '192.168.1.1', ['10.2.2.2', 'x']]], [['2001:db8::/32'], { x: '2001:db8::1', y: '10.0.0.1' }],
      [['::ffff:0.0.0.0/96'], ['1.2.3.4']], [['x'], ['1.2.3.4']], [['10.0.0.0/8'], ['x']], [[], []], [5, '1.2.3.4'], [['0.0.0.0/0'], ['::1']],
    ]),
  ],
})
