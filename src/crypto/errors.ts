/** Reason codes for payloads refused by the crypto stage (the table is ../reasons.ts). */
export { CryptoReason } from '../reasons.ts'

export class KeyWrapError extends Error {
  readonly code = 'ING_ERR_KEY_WRAP'
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'KeyWrapError'
  }
}
