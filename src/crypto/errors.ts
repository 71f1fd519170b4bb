import { VitalflowError } from '../errors.ts'

/** Reason codes for payloads refused by the crypto stage. Stable: they are stored and counted. */
export const CryptoReason = {
  decrypt: 'ING_ERR_DECRYPT',
  replay: 'ING_ERR_REPLAY',
  unknownKey: 'ING_ERR_KEY',
} as const
export type CryptoReason = (typeof CryptoReason)[keyof typeof CryptoReason]

export class KeyWrapError extends VitalflowError<'ING_ERR_KEY_WRAP'> {
  constructor (message: string, options?: ErrorOptions) {
    super('ING_ERR_KEY_WRAP', message, options)
  }
}
