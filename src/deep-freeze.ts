/**
 * Freezes a value and everything reachable from it (plain data: JSON values, documents,
 * configuration), children first. Nodes that are already frozen are still descended, since a
 * frozen object may hold unfrozen children. Returns the value.
 */
export function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}
