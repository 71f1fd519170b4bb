/** Bearer-token checks for the HTTP API: constant-time, no token echoed. */
import { timingSafeEqual } from 'node:crypto'

/** A check of `Authorization: Bearer <token>` against one token. */
export function bearerCheck (token: string): (authorization: string | undefined) => boolean {
  const expected = Buffer.from(token)
  return (authorization) => {
    const h = authorization ?? ''
    const given = Buffer.from(h.startsWith('Bearer ') ? h.slice(7) : '')
    return given.length === expected.length && timingSafeEqual(given, expected)
  }
}
