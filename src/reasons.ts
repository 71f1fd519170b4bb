/**
 * Every reason a message or connection is refused, with its stable code, in
 * one table. The codes are stored in rejected_messages and used as metric
 * labels. A leaf: the stage that refuses (crypto, decode, broker, pipeline)
 * takes its own group from here, and the pipeline records any of them.
 */

/** Payloads refused by the crypto stage. */
export const CryptoReason = {
  decrypt: 'ING_ERR_DECRYPT',
  replay: 'ING_ERR_REPLAY',
  unknownKey: 'ING_ERR_KEY',
} as const
export type CryptoReason = (typeof CryptoReason)[keyof typeof CryptoReason]

/** Payloads refused by the decode stage. */
export const DecodeReason = {
  envelope: 'ING_ERR_ENVELOPE',
  decode: 'ING_ERR_DECODE',
  range: 'ING_ERR_RANGE',
} as const
export type DecodeReason = (typeof DecodeReason)[keyof typeof DecodeReason]

/** Connections, subscriptions and publishes refused by the broker before the pipeline sees them. */
export const BrokerReason = {
  auth: 'ING_ERR_AUTH',
  clientId: 'ING_ERR_CLIENT_ID',
  subscribe: 'ING_ERR_SUBSCRIBE',
  size: 'ING_ERR_SIZE',
  protocol: 'ING_ERR_PROTOCOL',
  rate: 'ING_ERR_RATE',
  connLimit: 'ING_ERR_CONN_LIMIT',
  authBackoff: 'ING_ERR_AUTH_BACKOFF',
  authBusy: 'ING_ERR_AUTH_BUSY',
  revoked: 'ING_ERR_REVOKED',
} as const
export type BrokerReason = (typeof BrokerReason)[keyof typeof BrokerReason]

export const Reason = {
  ...CryptoReason,
  ...DecodeReason,
  ...BrokerReason,
  topic: 'ING_ERR_TOPIC',
  tenant: 'ING_ERR_TENANT',
  device: 'ING_ERR_DEVICE',
  storage: 'ING_ERR_STORAGE',
} as const
export type Reason = (typeof Reason)[keyof typeof Reason]

/** A refusal as it is counted and recorded: its reason and what is known of who sent what. */
export interface Refused<R extends Reason = Reason> {
  reason: R
  detail: string
  tenant?: string
  device?: string
  clientId?: string
  remoteAddress?: string
  topic?: string
  bytes?: number
}
