/**
 * Every reason a message or connection is refused, with its stable code. The
 * codes are stored in rejected_messages and used as metric labels.
 */
import { CryptoReason } from '../crypto/index.ts'
import { DecodeReason } from '../decode/index.ts'

export const Reason = {
  ...CryptoReason,
  ...DecodeReason,
  auth: 'ING_ERR_AUTH',
  clientId: 'ING_ERR_CLIENT_ID',
  topic: 'ING_ERR_TOPIC',
  tenant: 'ING_ERR_TENANT',
  device: 'ING_ERR_DEVICE',
  subscribe: 'ING_ERR_SUBSCRIBE',
  storage: 'ING_ERR_STORAGE',
  size: 'ING_ERR_SIZE',
  protocol: 'ING_ERR_PROTOCOL',
  rate: 'ING_ERR_RATE',
  connLimit: 'ING_ERR_CONN_LIMIT',
  authBackoff: 'ING_ERR_AUTH_BACKOFF',
  authBusy: 'ING_ERR_AUTH_BUSY',
} as const
export type Reason = (typeof Reason)[keyof typeof Reason]
