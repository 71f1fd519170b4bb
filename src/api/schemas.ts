/** Schema pieces every route file uses: declared once, validated by fastify, documented by @fastify/swagger. */
import { z } from 'zod'
import { ID_PATTERN } from '../ids.ts'

/** A tenant, patient, device or user id (the one alphabet of src/ids.ts). */
export const id = z.string().regex(ID_PATTERN)

/** A body that may be left out (no content at all): read as `{}`, its defaults applied. */
export function optionalBody<T extends z.ZodObject> (schema: T): z.ZodType<z.output<T>> {
  return schema.nullish().transform((v) => v ?? schema.parse({}))
}
