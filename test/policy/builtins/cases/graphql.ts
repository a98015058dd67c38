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

// gqlparser creates a type that is only extended from its first extension.
const EXTENDING = [
  'extend type User { id: ID! } extend type Product { upc: String! } union _Entity = Product | User extend type Query { entity: _Entity }',
  'extend type Query { myAction(myEnum: Locale!): SomeResult! } type SomeResult { id: String } enum Locale { EN LT DE }', 'extend type Hello { world: String }',
  'extend type Hello implements Greeting', 'extend type Query { a: Int } extend type Query { b: Int }', 'extend type Query { a: Int } extend input Query { b: Int }',
  'extend enum E { A } extend input I { e: E } type Query { f(i: I): E }', 'extend scalar Date type Query { d: Date }', 'extend interface N { id: ID } type Query { n: N }',
  'type Query { a: Int } extend type Query { a: Int }', 'extend union U = A type A { a: Int } type Query { u: U }',
]
const EXTENDING_QUERIES = ['{ entity { ... on User { id } } }', '{ myAction(myEnum: EN) { id } }', '{ a b }', '{ world }', '{ d }', '{ f(i: {e: A}) }']
// Schemas and queries as AST objects (what parse_schema / parse_query return), including ones
// whose inline fragments and spreads gqlparser's json.Unmarshal reads as fields.
const EMPLOYEE = 'type Employee { id: String! salary: Int! } schema { query: Query } type Query { employeeByID(id: String): Employee }'
const RICH_VALID = '"""desc""" schema { query: Q } type Q implements A @d { "field doc" f(a: Int = 1, b: [Int!]!): [U] @deprecated(reason: "r") e: E i(x: I): Int } union U = X | Y type X { x: Int } type Y { y: Int } enum E { A B @deprecated } input I { a: Int = 5, l: [String] } scalar S directive @d(x: Int) repeatable on OBJECT | FIELD interface A { f(a: Int, b: [Int!]!): [U] }'
const PUPIL = 'type Mutation { createPupil(pupil: PupilInput!): Pupil } type Query { pupil(firstname: String): Pupil } type Pupil { friends: [Pupil!]! } input PupilInput { friends: [Pupil] } schema { query: Query mutation: Mutation }'

export const graphqlGroup = (): Group => ({
  name: 'graphql',
  tables: [
    table('graphql.parse_query', [[Q], ...queries.map((q) => [q]), ['{ a(x: """block\n  text""") }'], ['{ a(x: """\n    block\n      text\n  """) }'], ['{ a(x: """  lead\n\n  x\n\n""") }'], ['{ a(x: """esc \\""" q""") }'], ['subscription S { s }'], [1]]),
    table('graphql.parse_schema', [[RICH], ...schemas.map((s) => [s]), ['{ a }'], ['type Q { a(: Int) }'], [1]]),
    table('graphql.parse', [...queries.map((q) => [q, S]), ['{ a }', 'type Query { a: Int }'], [1, S]]),
    table('graphql.parse_and_verify', [...queries.map((q) => [q, S]), ['{ a }', 'type Query { a: Nope }'], [1, S], ['{ a }', 2]]),
    table('graphql.schema_is_valid', [...schemas.map((s) => [s]), [1]]),
    table('graphql.is_valid', [...queries.map((q) => [q, S]), ['{ a }', 'type Query { a: Int }'], ['{ a }', 'type Query { a: Nope }'], ['{ b }', ''], [1, S]]),
    table('graphql.schema_is_valid', EXTENDING.map((x) => [x])),
    table('graphql.is_valid', EXTENDING.flatMap((x) => EXTENDING_QUERIES.map((q) => [q, x]))),
    table('graphql.parse_and_verify', EXTENDING.slice(0, 3).flatMap((x) => EXTENDING_QUERIES.slice(0, 3).map((q) => [q, x]))),
    table('graphql.parse', EXTENDING.slice(0, 3).map((x, i) => [EXTENDING_QUERIES[i], x])),
    // fragment variable definitions (gqlparser parses them; graphql-js only with its legacy option)
    table('graphql.parse_query', [['fragment a($v: Boolean = false) on t { f(v: $v) }'], ['fragment a($v: Int!, $w: [String] = ["x"]) on t { f(v: $v) }'], ['query { ...a } fragment a($v: Int) on t { f }']]),
    // malformed queries are errors (fuzzer finds; the second was once read as valid)
    table('graphql.parse_query', [['{__typename{...}}'], ['{...{__typename{...{}}}}'], ['{...{}}'], ['{ a { } }'], ['query ($a: ) { a }']]),
    table('graphql.schema_is_valid', [EMPLOYEE, S, RICH_VALID, PUPIL, ...EXTENDING].map((x) => [x]), 'graphql.schema_is_valid(graphql.parse_schema($0))'),
    table('graphql.is_valid', [EMPLOYEE, S, RICH_VALID, ...EXTENDING.slice(0, 3)].flatMap((x) => [...queries, 'query { employeeByID(id: "alice") { salary } }', ...EXTENDING_QUERIES].map((q) => [q, x])),
      'graphql.is_valid(graphql.parse_query($0), graphql.parse_schema($1))'),
    table('graphql.is_valid', [EMPLOYEE, S].flatMap((x) => [...queries, 'query { employeeByID(id: "alice") { salary } }'].map((q) => [q, x])), 'graphql.is_valid(graphql.parse_query($0), $1)'),
    table('graphql.is_valid', [EMPLOYEE, S].flatMap((x) => [...queries, 'query { employeeByID(id: "alice") { salary } }'].map((q) => [q, x])), 'graphql.is_valid($0, graphql.parse_schema($1))'),
    table('graphql.parse_and_verify', [EMPLOYEE, S].flatMap((x) => ['query Q($id: String = "x") { employeeByID(id: $id) { id } }', ...queries.slice(0, 8)].map((q) => [q, x])),
      'graphql.parse_and_verify(graphql.parse_query($0), graphql.parse_schema($1))'),
    table('graphql.parse', [EMPLOYEE, S].flatMap((x) => ['query { employeeByID(id: "alice") { salary } }', ...queries.slice(0, 8)].map((q) => [q, x])), 'graphql.parse(graphql.parse_query($0), graphql.parse_schema($1))'),
    // hand-written AST objects: missing members, wrong member types, selections json.Unmarshal reads as fields
    table('graphql.is_valid', [
      [{ Operations: [{ Operation: 'query', SelectionSet: [{ Name: 'employeeByID', Arguments: [{ Name: 'id', Value: { Kind: 3, Raw: 'a' } }], SelectionSet: [{ Name: 'id' }] }] }] }, EMPLOYEE],
      [{ Operations: [{ SelectionSet: [{ Name: 'employeeByID', SelectionSet: [{ TypeCondition: 'Employee', SelectionSet: [{ Name: 'id' }] }] }] }] }, EMPLOYEE],
      [{ Operations: [{ Operation: 'query', SelectionSet: [{ Name: 'employeeByID', SelectionSet: [{ Alias: 'x', Name: 'id' }, { Alias: 'x', Name: 'salary' }] }] }] }, EMPLOYEE],
      [{ Operations: 'x' }, EMPLOYEE], [{ Operations: [{ Name: 1 }] }, EMPLOYEE], [{}, EMPLOYEE], [{ Operations: [] }, EMPLOYEE], [{ Unknown: 1 }, EMPLOYEE],
      ['{ a }', { Definitions: [{ Kind: 'OBJECT', Name: 'Query', Fields: [{ Name: 'a', Type: { NamedType: 'Int' } }] }] }],
      ['{ a }', { Definitions: [{ Kind: 'OBJECT', Name: 'Query', Fields: [{ Name: 'a', Type: { NamedType: 'Nope' } }] }] }],
      ['{ a }', { Definitions: [{ Kind: 'OBJECT', Name: 'Query', Fields: [{ Name: 'a', Type: { Elem: { NamedType: 'Int' }, NonNull: true } }] }] }],
      ['{ a }', { Definitions: 'x' }], ['{ a }', {}], ['{ a }', { Extensions: [{ Kind: 'OBJECT', Name: 'Query', Fields: [{ Name: 'a', Type: { NamedType: 'Int' } }] }] }],
    ]),
  ],

})
