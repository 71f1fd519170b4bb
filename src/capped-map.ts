/**
 * A hard cap for maps keyed by what outsiders choose (source addresses,
 * identities, session tokens). Pruning only what has expired does not bound
 * such a map while every key is live, so at its cap a map drops its oldest
 * entries (Map keeps insertion order; `touch` moves a key to the newest end,
 * which makes the order least-recently-used) and counts them.
 */

/** Share of the cap a full map is brought down to, so the scan runs once per tenth of the cap, not on every insert. */
const REFILL = 0.9

export function touch<K, V> (map: Map<K, V>, key: K, value: V): void {
  map.delete(key)
  map.set(key, value)
}

/**
 * Call before inserting a new key. When the map holds `cap` entries or more:
 * drops the entries `expired` says are gone (not counted), then, still at or
 * above REFILL of the cap, the oldest entries `evictable` allows until it is
 * below. Returns how many live entries it dropped (for the owner's eviction counter).
 */
export function makeRoom<K, V> (map: Map<K, V>, cap: number, expired: (v: V) => boolean, evictable: (v: V) => boolean = () => true): number {
  if (map.size < cap) return 0
  for (const [k, v] of map) if (expired(v)) map.delete(k)
  const keep = Math.max(0, Math.floor(cap * REFILL) - 1)
  let evicted = 0
  for (const [k, v] of map) {
    if (map.size <= keep) break
    if (!evictable(v)) continue
    map.delete(k)
    evicted++
  }
  return evicted
}
