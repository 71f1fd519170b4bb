/** Reason codes of the decode stage (the table is ../reasons.ts). */
import type { DecodeReason } from '../reasons.ts'
export { DecodeReason } from '../reasons.ts'

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; reason: DecodeReason; detail: string }
