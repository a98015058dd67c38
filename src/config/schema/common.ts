/**
 * The building blocks every section of the configuration schema (src/config/schema.ts) is made
 * of, so a key of one kind is described and bounded the same way in every section.
 */
import { Type, type TSchema } from '@sinclair/typebox'

export const Str = (description: string) => Type.String({ description })
export const Int = (description: string, min = 0) => Type.Integer({ description, minimum: min })
export const Bool = (description: string) => Type.Boolean({ description })
export const strict = { additionalProperties: false }

export const Range = (description: string, minimum: number, maximum: number) => Type.Integer({ description, minimum, maximum })
export const NonEmpty = (description: string) => Type.String({ description, minLength: 1 })
/**
 * A list of strings where the file may also give one string (`x509_authorities: ca.pem`).
 * `x-single-is-list` marks it for config/identity.ts, which wraps a lone string before validation.
 */
export const List = <T extends TSchema>(items: T, description: string, minItems = 0) => Type.Array(items, { description, minItems, 'x-single-is-list': true })
/** RFC 9110 field-name token; stored lowercase. */
export const HeaderName = (description: string) => Type.String({ description, pattern: "^[!#$%&'*+.^_`|~0-9a-zA-Z-]+$" })
export const DAY_S = 86_400
