/**
 * Lists of IP addresses and CIDR ranges from the configuration (trusted load
 * balancers), and the test whether a socket's address is on one. A leaf: the
 * configuration validates with it and the broker matches with it.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net'

/** `1.2.3.4`, `10.0.0.0/8`, `fd00::/8`, ...; an item that is neither an address nor a range throws, naming it. */
export function addressList (entries: string[]): BlockList {
  const list = new BlockList()
  for (const e of entries) {
    const [address, bits] = e.split('/') as [string, string | undefined]
    const type = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : null
    if (type === null) throw new Error(`not an IP address: ${e}`)
    if (bits === undefined) list.addAddress(address, type)
    else {
      const prefix = /^[0-9]{1,3}$/.test(bits) ? Number(bits) : NaN
      if (!(prefix <= (type === 'ipv4' ? 32 : 128))) throw new Error(`not a prefix length: ${e}`)
      list.addSubnet(address, prefix, type)
    }
  }
  return list
}

/** Also matches an IPv4 address a dual-stack socket reports as `::ffff:1.2.3.4`. */
export function onList (list: BlockList, address: string | undefined): boolean {
  if (address === undefined) return false
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped !== null) return list.check(mapped[1]!, 'ipv4') || list.check(address, 'ipv6')
  return list.check(address, isIPv4(address) ? 'ipv4' : 'ipv6')
}
