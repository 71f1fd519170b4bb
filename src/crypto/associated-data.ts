/**
 * Associated data bound into every payload seal: format version, tenant,
 * device, stream, sequence number and key id. Changing any of them makes the
 * tag fail, so a sealed payload cannot be moved to another topic, device or
 * tenant, or replayed under another sequence number or key.
 *
 * Layout (docs/device-protocol.md spells it out with examples):
 *   "vf1" 0x00 tenant 0x00 device 0x00 stream 0x00 seq(u64 BE) keyId(u32 BE)
 * Ids are validated by the topic parser ([A-Za-z0-9_-]{1,64}), so 0x00 cannot
 * occur in them. seq is a uint64 over its whole range (a number must be a safe
 * integer).
 */
const PREFIX = 'vf1\0'

export function associatedData (tenant: string, device: string, stream: string, seq: bigint | number, keyId: number): Buffer {
  const head = PREFIX.length + tenant.length + device.length + stream.length + 3
  const out = Buffer.allocUnsafe(head + 12)
  let o = out.write(PREFIX, 0, 'latin1')
  o += out.write(tenant, o, 'latin1'); out[o++] = 0
  o += out.write(device, o, 'latin1'); out[o++] = 0
  o += out.write(stream, o, 'latin1'); out[o++] = 0
  if (typeof seq === 'bigint') out.writeBigUInt64BE(seq, o)
  else {
    out.writeUInt32BE(Math.floor(seq / 0x1_0000_0000), o)
    out.writeUInt32BE(seq >>> 0, o + 4)
  }
  out.writeUInt32BE(keyId >>> 0, o + 8)
  return out
}
