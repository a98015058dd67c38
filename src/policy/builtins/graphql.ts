/**
 * graphql.is_valid and graphql.schema_is_valid (OPA v1/topdown/graphql.go over gqlparser),
 * answered with graphql-js: the GraphQL specification's validation rules, with gqlparser's
 * leniencies (an empty document is valid; a schema needs no Query type). The AST-returning
 * graphql.parse* builtins are not implemented (docs/builtins.md).
 */
import { createRequire } from 'node:module'
import type * as GraphQL from 'graphql'
import type { BuiltinSpec } from './types.js'
import { BuiltinError } from './types.js'

const require = createRequire(import.meta.url)
const gql = require('graphql') as typeof GraphQL

const schemas = new Map<string, GraphQL.GraphQLSchema | undefined>()

function schemaOf (b: string, s: unknown): GraphQL.GraphQLSchema | undefined {
  if (s !== null && typeof s === 'object') throw new BuiltinError(b, 'schema ASTs (objects) are not supported, pass the schema text')
  if (typeof s !== 'string') return undefined
  if (schemas.has(s)) return schemas.get(s)
  let out: GraphQL.GraphQLSchema | undefined
  try {
    const schema = s.trim() === '' ? new gql.GraphQLSchema({}) : gql.buildASTSchema(gql.parse(s), { assumeValidSDL: false })
    // gqlparser does not require a Query root type.
    const errors = gql.validateSchema(schema).filter((e) => !/Query root type must be provided/.test(e.message))
    out = errors.length === 0 ? schema : undefined
  } catch {
    out = undefined
  }
  if (schemas.size > 64) schemas.clear()
  schemas.set(s, out)
  return out
}

export const graphqlBuiltins: BuiltinSpec[] = [
  {
    name: 'graphql.schema_is_valid',
    impl: (_ctx, [s]) => schemaOf('graphql.schema_is_valid', s) !== undefined,
  },
  {
    name: 'graphql.is_valid',
    impl: (_ctx, [q, s]) => {
      const b = 'graphql.is_valid'
      if (q !== null && typeof q === 'object') throw new BuiltinError(b, 'query ASTs (objects) are not supported, pass the query text')
      if (typeof q !== 'string') return false
      const schema = schemaOf(b, s)
      if (schema === undefined) return false
      if (q.trim() === '') return true
      try {
        return gql.validate(schema, gql.parse(q)).length === 0
      } catch {
        return false
      }
    },
  },
]
