/** aedes-persistence-redis ships no types: the factory, as aedes takes it (AedesOptions.persistence is `any`). */
declare module 'aedes-persistence-redis' {
  import type { Redis } from 'ioredis'
  function persistence (opts: { conn?: Redis; maxSessionDelivery?: number; packetTTL?: () => number }): unknown
  export default persistence
}
