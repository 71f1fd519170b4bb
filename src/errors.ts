/**
 * The one error base of the project: a stable `code` (undici style, `ING_ERR_…`), a message we wrote
 * (it names no request value), and the `cause` passed on. What a code means over HTTP is one table
 * here; the API's single error handler (src/api/http-answers.ts) answers by it.
 */
export class VitalflowError<C extends string = string> extends Error {
  readonly code: C
  constructor (code: C, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/**
 * HTTP status of each code an answer may carry. A code not listed (a device refusal, a bug) is a 500.
 * A 4xx answer carries the error's own message; a 5xx only its status's text.
 */
export const HTTP_STATUS = {
  ING_ERR_INVALID: 400,
  ING_ERR_ID: 400,
  ING_ERR_CSR: 400,
  ING_ERR_AUTH: 401,
  ING_ERR_ROLE: 403,
  ING_ERR_NOT_FOUND: 404,
  ING_ERR_CONFLICT: 409,
  ING_ERR_HELD: 409,
  ING_ERR_LOCKED: 423,
  ING_ERR_AUTH_BACKOFF: 429,
  ING_ERR_AUTH_BUSY: 503,
  ING_ERR_AUTH_CLOSED: 503,
  ING_ERR_BACKPRESSURE: 503,
  ING_ERR_STORAGE: 503,
  ING_ERR_CLUSTER: 503,
  ING_ERR_DISK_FULL: 503,
  ING_ERR_WAL_CLOSED: 503,
} as const satisfies Record<`ING_ERR_${string}`, number>

export type HttpErrorCode = keyof typeof HTTP_STATUS

/** The status of an error code: the table's, else 500. */
export function httpStatusOf (code: string): number {
  return Object.hasOwn(HTTP_STATUS, code) ? HTTP_STATUS[code as HttpErrorCode] : 500
}

/** Whether `err` is one of ours (narrowed with its code a string, not `any` as `instanceof` of a generic class gives). */
export function isVitalflowError (err: unknown): err is VitalflowError {
  return err instanceof VitalflowError
}
