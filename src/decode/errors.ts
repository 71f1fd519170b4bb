/** Reason codes of the decode stage. Stable: they are stored in rejected_messages and counted. */
export const DecodeReason = {
  envelope: 'ING_ERR_ENVELOPE',
  decode: 'ING_ERR_DECODE',
  range: 'ING_ERR_RANGE',
} as const
export type DecodeReason = (typeof DecodeReason)[keyof typeof DecodeReason]

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; reason: DecodeReason; detail: string }
