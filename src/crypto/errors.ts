import { VitalflowError } from '../errors.ts'

/** Reason codes for payloads refused by the crypto stage (the table is ../reasons.ts). */
export { CryptoReason } from '../reasons.ts'

export class KeyWrapError extends VitalflowError<'ING_ERR_KEY_WRAP'> {
  constructor (message: string, options?: ErrorOptions) {
    super('ING_ERR_KEY_WRAP', message, options)
  }
}
