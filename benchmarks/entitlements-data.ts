/**
 * The large-data benchmarks' data set (issue 12's shape): `{"users": {"user0000123": {"email",
 * "roles": [2 of 6], "attributes": {department, level, active, region}}}}`, ~153 bytes per user,
 * deterministic, members written in the order a service would write them (not sorted).
 * Shared by bench:large-data and bench:canonical-hash.
 */

/** The user every revision grants `admin` (the steady request) and the probe whose role changes with the revision. */
export const STEADY = { user: 'user0000003', role: 'admin' }
export const probe = (revision: number): { user: string, role: string } => ({ user: 'probe', role: `rev${revision}` })

/** Writes `{"users": {...}}` of about `bytes` bytes: users with roles and attributes (deterministic). */
export function generateData (bytes: number, revision: number): Buffer {
  const roles = ['admin', 'editor', 'viewer', 'auditor', 'billing', 'support']
  const depts = ['eng', 'sales', 'ops', 'finance', 'legal']
  let s = 12345
  const rnd = (): number => { s = (s * 1103515245 + 12345) & 0x7fffffff; return s }
  const parts: string[] = [`"probe":${JSON.stringify({ roles: [`rev${revision}`], attributes: {} })}`]
  let size = parts[0]!.length + 12
  for (let i = 0; size < bytes; i++) {
    const id = `user${String(i).padStart(7, '0')}`
    const userRoles = id === STEADY.user ? ['admin', 'viewer'] : [roles[rnd() % 6], roles[rnd() % 6]]
    const u = { email: `${id}@example.com`, roles: userRoles, attributes: { department: depts[rnd() % 5], level: rnd() % 10, active: (rnd() & 1) === 1, region: `r${rnd() % 20}` } }
    const t = `${JSON.stringify(id)}:${JSON.stringify(u)}`
    parts.push(t)
    size += t.length + 1
  }
  return Buffer.from(`{"users":{${parts.join(',')}}}`)
}
