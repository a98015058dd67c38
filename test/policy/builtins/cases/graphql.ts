import { table, type Group } from './types.js'

const S = 'type Query { user(id: Int!): User, users(first: Int = 10): [User!]! } type User { name: String, friends: [User], role: Role } enum Role { ADMIN USER } directive @auth(role: Role) on FIELD_DEFINITION'
const schemas = [S, 'type Query { a: Nope }', 'type Query', 'schema { query: Q } type Q { a: Int }', 'type Query { a: Int } type Query { b: Int }', '', '   ', 'type User { name: String }',
  'interface Node { id: ID! } type Query { node: Node } type A implements Node { id: ID! }', 'type Query { a: Int } extend type Query { b: Int }', 'input I { a: Int } type Query { f(i: I): Int }',
  'type Query { f(i: User): Int } type User { a: Int }', 'scalar Date type Query { d: Date }', 'union U = A | B type A { a: Int } type B { b: Int } type Query { u: U }', 'type Query { a: Int @unknown }']
const queries = ['{ user(id: 1) { name } }', '{ user { name } }', '{ user(id: 1) { nope } }', 'query { user(id: 1) { name friends { name } } }', '{ user(id: 1) }', 'not graphql', '',
  'query Q($id: Int!) { user(id: $id) { name } }', 'query Q($id: String) { user(id: $id) { name } }', '{ users { ...F } } fragment F on User { name }', '{ users { ...F } } fragment F on User { nope }',
  '{ users(first: 2) { role } }', 'query A { users { name } } query A { users { name } }', '{ a: user(id: 1) { name } a: users { name } }', 'mutation { x }', '{ __typename }', '{ user(id: 1) { name @skip(if: true) } }']

const Q = 'query Q($id: Int = 3, $f: [String!]!) @dir(a: 1) { a: user(id: $id, s: "x\\ny", b: true, n: null, e: ADMIN, l: [1, 2.5], o: {k: "v"}) @skip(if: false) { ...F ... on User { name } } } fragment F on User { name }'
const RICH = '"""desc""" schema { query: Q } "type doc" type Q implements A & B @x { "field doc" f(a: Int = 1 @d, b: [X!]!): [Y] @deprecated(reason: "r") } union U = A | B enum E { A @d B } input I { a: Int = 5 } scalar S directive @d(x: Int) repeatable on FIELD | ENUM_VALUE interface A { id: ID } extend type Q { g: Int }'

export const graphqlGroup = (): Group => ({
  name: 'graphql',
  tables: [
    table('graphql.parse_query', [[Q], ...queries.map((q) => [q]), ['{ a(x: """block\n  text""") }'], ['{ a(x: """\n    block\n      text\n  """) }'], ['{ a(x: """  lead\n\n  x\n\n""") }'], ['{ a(x: """esc \\""" q""") }'], ['subscription S { s }'], [1]]),
    table('graphql.parse_schema', [[RICH], ...schemas.map((s) => [s]), ['{ a }'], ['type Q { a(: Int) }'], [1]]),
    table('graphql.parse', [...queries.map((q) => [q, S]), ['{ a }', 'type Query { a: Int }'], [1, S]]),
    table('graphql.parse_and_verify', [...queries.map((q) => [q, S]), ['{ a }', 'type Query { a: Nope }'], [1, S], ['{ a }', 2]]),
    table('graphql.schema_is_valid', [...schemas.map((s) => [s]), [1]]),
    table('graphql.is_valid', [...queries.map((q) => [q, S]), ['{ a }', 'type Query { a: Int }'], ['{ a }', 'type Query { a: Nope }'], ['{ b }', ''], [1, S]]),
  ],
})
