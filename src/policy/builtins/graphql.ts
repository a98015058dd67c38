/**
 * graphql.* (OPA v1/topdown/graphql.go over gqlparser), over graphql-js: parsing, and the
 * GraphQL specification's validation rules with gqlparser's leniencies (an empty document is
 * valid; a schema needs no Query type). ASTs are returned in gqlparser's JSON shape, pruned
 * as OPA prunes them (no positions, no null or empty members). Queries and schemas are taken
 * as text or as gqlparser AST objects (what graphql.parse_query / parse_schema return), read
 * the way OPA's json.Unmarshal into gqlparser's structs reads them.
 */
import { createRequire } from 'node:module'
import type * as GraphQL from 'graphql'
import type { BuiltinSpec } from './types.js'
import { BuiltinError, withLibrary } from './types.js'
import { isObj } from './args.js'
import { queryDocumentFromAst, schemaDocumentFromAst } from './graphql-ast.js'

const require = createRequire(import.meta.url)
let graphqlJs: typeof GraphQL | undefined
/** graphql-js, required on the first graphql.* call: most policies never call one, and loading it is a noticeable part of a server's start. */
function gql (): typeof GraphQL {
  graphqlJs ??= require('graphql') as typeof GraphQL
  return graphqlJs
}

const schemas = new Map<string, GraphQL.GraphQLSchema | undefined>()

const EMPTY_DOC: GraphQL.DocumentNode = { kind: 'Document' as GraphQL.Kind.DOCUMENT, definitions: [] }

/** gqlparser parses variable definitions on fragments (`fragment a($v: Boolean = false) on t`). */
const PARSE_OPTIONS: GraphQL.ParseOptions = { allowLegacyFragmentVariables: true }

/**
 * gqlparser's validator/rules/known_root_type.go: an operation whose root type the schema
 * does not define ("mutation" without a Mutation type) is invalid. graphql-js 16's specified
 * rules leave this to execution (17 added KnownOperationTypesRule, but 17 needs Node 22).
 */
function knownRootType (ctx: GraphQL.ValidationContext): GraphQL.ASTVisitor {
  return {
    OperationDefinition (node) {
      if (ctx.getSchema()?.getRootType(node.operation) === undefined) {
        ctx.reportError(new (gql().GraphQLError)(`Schema does not support operation type "${node.operation}"`, { nodes: node }))
      }
    },
  }
}

let queryRules: GraphQL.ValidationRule[] | undefined
/** graphql-js's specified rules plus gqlparser's known root type. */
const specifiedQueryRules = (): GraphQL.ValidationRule[] => (queryRules ??= [...gql().specifiedRules, knownRootType])

/** True when the query document is valid against the schema under gqlparser's rules. */
function queryIsValid (schema: GraphQL.GraphQLSchema, doc: GraphQL.DocumentNode): boolean {
  try {
    return gql().validate(schema, doc, specifiedQueryRules()).length === 0
  } catch {
    // graphql-js throws on some documents it cannot validate (no root type at all): not valid
    return false
  }
}

const EXTENSION_TO_DEFINITION: Record<string, GraphQL.Kind> = {
  ObjectTypeExtension: 'ObjectTypeDefinition' as GraphQL.Kind, InterfaceTypeExtension: 'InterfaceTypeDefinition' as GraphQL.Kind,
  UnionTypeExtension: 'UnionTypeDefinition' as GraphQL.Kind, EnumTypeExtension: 'EnumTypeDefinition' as GraphQL.Kind,
  InputObjectTypeExtension: 'InputObjectTypeDefinition' as GraphQL.Kind, ScalarTypeExtension: 'ScalarTypeDefinition' as GraphQL.Kind,
}

/**
 * gqlparser's ValidateSchemaDocument creates a type that is only extended (`extend type User
 * { id: ID! }` with no `type User`) from its first extension; graphql-js refuses to extend an
 * unknown type. The first extension of such a type becomes its definition.
 */
function extensionsAsDefinitions (doc: GraphQL.DocumentNode): GraphQL.DocumentNode {
  const defined = new Set<string>()
  for (const d of doc.definitions) if (d.kind.endsWith('TypeDefinition') && 'name' in d && d.name !== undefined) defined.add(d.name.value)
  let changed = false
  const definitions = doc.definitions.map((d) => {
    const kind = EXTENSION_TO_DEFINITION[d.kind]
    if (kind === undefined || !('name' in d) || d.name === undefined || defined.has(d.name.value) || gql().specifiedScalarTypes.some((t) => t.name === d.name?.value)) return d
    defined.add(d.name.value)
    changed = true
    return { ...d, kind } as GraphQL.DefinitionNode
  })
  return changed ? { ...doc, definitions } : doc
}

/** The schema a schema document builds under gqlparser's rules, or undefined when it is invalid. */
function schemaFromDocument (doc: GraphQL.DocumentNode): GraphQL.GraphQLSchema | undefined {
  try {
    const schema = doc.definitions.length === 0 ? new (gql().GraphQLSchema)({}) : gql().buildASTSchema(extensionsAsDefinitions(doc), { assumeValidSDL: false })
    // gqlparser does not require a Query root type.
    const errors = gql().validateSchema(schema).filter((e) => !/Query root type must be provided/.test(e.message))
    return errors.length === 0 ? schema : undefined
  } catch {
    return undefined
  }
}

/**
 * A schema operand — text, or a gqlparser AST object — as a document; undefined when OPA
 * could not read it (a wrong type, a syntax error, an object json.Unmarshal refuses).
 */
function schemaDocumentOf (s: unknown): GraphQL.DocumentNode | undefined {
  try {
    if (typeof s === 'string') return s.trim() === '' ? EMPTY_DOC : gql().parse(s)
    if (isObj(s)) return schemaDocumentFromAst(s)
  } catch {}
  return undefined
}

function schemaOf (_b: string, s: unknown): GraphQL.GraphQLSchema | undefined {
  if (typeof s !== 'string' && !isObj(s)) return undefined
  const key = typeof s === 'string' ? 's' + s : 'o' + JSON.stringify(s)
  if (schemas.has(key)) return schemas.get(key)
  const doc = schemaDocumentOf(s)
  const out = doc === undefined ? undefined : schemaFromDocument(doc)
  if (schemas.size > 64) schemas.clear()
  schemas.set(key, out)
  return out
}

// ---- gqlparser's AST JSON from graphql-js nodes ----

type N = GraphQL.ASTNode

const KIND: Record<string, number> = { Variable: 0, IntValue: 1, FloatValue: 2, StringValue: 3, BooleanValue: 5, NullValue: 6, EnumValue: 7, ListValue: 8, ObjectValue: 9 }

function value (v: GraphQL.ValueNode): Record<string, unknown> {
  const base = { ExpectedTypeHasDefault: false, Kind: KIND[v.kind] ?? 0, Raw: '' }
  switch (v.kind) {
    case 'Variable': return { ...base, Raw: v.name.value }
    case 'IntValue': case 'FloatValue': case 'EnumValue': return { ...base, Raw: v.value }
    case 'StringValue': return { ...base, Kind: v.block === true ? 4 : 3, Raw: v.block === true ? blockString(v) : v.value }
    case 'BooleanValue': return { ...base, Raw: String(v.value) }
    case 'NullValue': return { ...base, Raw: 'null' }
    case 'ListValue': return { ...base, Children: v.values.map((c) => ({ Name: '', Value: value(c) })) }
    case 'ObjectValue': return { ...base, Children: v.fields.map((f) => ({ Name: f.name.value, Value: value(f.value) })) }
  }
  return base
}

let source = ''

/**
 * gqlparser's block string value: the common indentation is measured over every non-blank
 * line, the first included, and removed from all lines but the first; blank lines at either
 * end are dropped. (graphql-js leaves the first line out of the measure.)
 */
function blockString (v: GraphQL.StringValueNode): string {
  if (v.loc === undefined) return v.value
  const raw = source.slice(v.loc.start + 3, v.loc.end - 3).replaceAll('\\"""', '"""')
  const lines = raw.split(/\r\n|\n|\r/)
  let common = Infinity
  for (const l of lines) {
    const indent = l.length - l.replace(/^[ \t]+/, '').length
    if (indent < l.length) common = Math.min(common, indent)
  }
  const out = lines.map((l, i) => (i > 0 && common !== Infinity ? l.slice(common) : l))
  while (out.length > 0 && /^[ \t]*$/.test(out[0] as string)) out.shift()
  while (out.length > 0 && /^[ \t]*$/.test(out[out.length - 1] as string)) out.pop()
  return out.join('\n')
}

function type (t: GraphQL.TypeNode): Record<string, unknown> {
  if (t.kind === 'NonNullType') return { ...type(t.type), NonNull: true }
  if (t.kind === 'ListType') return { NamedType: '', Elem: type(t.type), NonNull: false }
  return { NamedType: t.name.value, NonNull: false }
}

const args = (a: readonly GraphQL.ArgumentNode[] | undefined): unknown[] => (a ?? []).map((x) => ({ Name: x.name.value, Value: value(x.value) }))
const directives = (d: readonly GraphQL.DirectiveNode[] | undefined): unknown[] => (d ?? []).map((x) => ({ Name: x.name.value, Arguments: args(x.arguments), Location: '' }))

function selections (ss: GraphQL.SelectionSetNode | undefined): unknown[] {
  return (ss?.selections ?? []).map((sel) => {
    if (sel.kind === 'Field') return { Alias: sel.alias?.value ?? sel.name.value, Name: sel.name.value, Arguments: args(sel.arguments), Directives: directives(sel.directives), SelectionSet: selections(sel.selectionSet) }
    if (sel.kind === 'FragmentSpread') return { Name: sel.name.value, Directives: directives(sel.directives) }
    return { TypeCondition: sel.typeCondition?.name.value ?? '', Directives: directives(sel.directives), SelectionSet: selections(sel.selectionSet) }
  })
}

function variableDefinition (v: GraphQL.VariableDefinitionNode): Record<string, unknown> {
  return { Variable: v.variable.name.value, Type: type(v.type), DefaultValue: v.defaultValue !== undefined ? value(v.defaultValue) : null, Directives: directives(v.directives), Used: false }
}

function queryDoc (doc: GraphQL.DocumentNode): Record<string, unknown> {
  const ops: unknown[] = []; const frags: unknown[] = []
  for (const d of doc.definitions) {
    if (d.kind === 'OperationDefinition') {
      ops.push({
        Operation: d.operation, Name: d.name?.value ?? '', Directives: directives(d.directives), SelectionSet: selections(d.selectionSet),
        VariableDefinitions: (d.variableDefinitions ?? []).map(variableDefinition),
      })
    } else if (d.kind === 'FragmentDefinition') {
      frags.push({
        Name: d.name.value, VariableDefinition: (d.variableDefinitions ?? []).map(variableDefinition), TypeCondition: d.typeCondition.name.value,
        Directives: directives(d.directives), SelectionSet: selections(d.selectionSet),
      })
    }
  }
  return { Operations: ops, Fragments: frags }
}

const desc = (d: GraphQL.StringValueNode | undefined): string => d?.value ?? ''

function inputValue (a: GraphQL.InputValueDefinitionNode): Record<string, unknown> {
  return { Description: desc(a.description), Name: a.name.value, Type: type(a.type), DefaultValue: a.defaultValue !== undefined ? value(a.defaultValue) : null, Directives: directives(a.directives) }
}

function definition (d: GraphQL.TypeDefinitionNode | GraphQL.TypeExtensionNode): Record<string, unknown> {
  const kinds: Record<string, string> = {
    ObjectTypeDefinition: 'OBJECT', ObjectTypeExtension: 'OBJECT', InterfaceTypeDefinition: 'INTERFACE', InterfaceTypeExtension: 'INTERFACE', UnionTypeDefinition: 'UNION', UnionTypeExtension: 'UNION',
    EnumTypeDefinition: 'ENUM', EnumTypeExtension: 'ENUM', InputObjectTypeDefinition: 'INPUT_OBJECT', InputObjectTypeExtension: 'INPUT_OBJECT', ScalarTypeDefinition: 'SCALAR', ScalarTypeExtension: 'SCALAR',
  }
  const out: Record<string, unknown> = { Kind: kinds[d.kind], Description: 'description' in d ? desc(d.description) : '', Name: d.name.value, Directives: directives(d.directives), BuiltIn: false }
  if ('interfaces' in d) out.Interfaces = (d.interfaces ?? []).map((i) => i.name.value)
  if ('types' in d) out.Types = (d.types ?? []).map((t) => t.name.value)
  if ('values' in d) out.EnumValues = (d.values ?? []).map((v) => ({ Description: desc(v.description), Name: v.name.value, Directives: directives(v.directives) }))
  if ('fields' in d) {
    out.Fields = (d.fields ?? []).map((f) => f.kind === 'InputValueDefinition'
      ? inputValue(f)
      : { Description: desc(f.description), Name: f.name.value, Arguments: (f.arguments ?? []).map(inputValue), Type: type(f.type), Directives: directives(f.directives) })
  }
  return out
}

function schemaDoc (doc: GraphQL.DocumentNode): Record<string, unknown> {
  const schema: unknown[] = []; const schemaExt: unknown[] = []; const dirs: unknown[] = []; const defs: unknown[] = []; const exts: unknown[] = []
  for (const d of doc.definitions) {
    if (d.kind === 'SchemaDefinition' || d.kind === 'SchemaExtension') {
      const ops = (d.operationTypes ?? []).map((o) => ({ Operation: o.operation, Type: o.type.name.value }))
      ;(d.kind === 'SchemaDefinition' ? schema : schemaExt).push({ Description: d.kind === 'SchemaDefinition' ? desc(d.description) : '', Directives: directives(d.directives), OperationTypes: ops })
    } else if (d.kind === 'DirectiveDefinition') {
      dirs.push({ Description: desc(d.description), Name: d.name.value, Arguments: d.arguments?.map(inputValue) ?? [], Locations: d.locations.map((l) => l.value), IsRepeatable: d.repeatable })
    } else if (d.kind.endsWith('TypeDefinition')) defs.push(definition(d as GraphQL.TypeDefinitionNode))
    else if (d.kind.endsWith('TypeExtension')) exts.push(definition(d as GraphQL.TypeExtensionNode))
    else throw new Error(`unexpected ${d.kind} in a schema`)
  }
  return { Schema: schema, SchemaExtension: schemaExt, Directives: dirs, Definitions: defs, Extensions: exts }
}

/** OPA's pruneIrrelevantGraphQLASTNodes: drop nulls and (recursively) empty arrays and objects. */
function prune (v: unknown): unknown {
  if (Array.isArray(v)) {
    const out: unknown[] = []
    for (const x of v) {
      if (x === null || x === undefined) continue
      const p = prune(x)
      if ((Array.isArray(p) && p.length === 0) || (p !== null && typeof p === 'object' && !Array.isArray(p) && Object.keys(p).length === 0)) continue
      out.push(p)
    }
    return out
  }
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) {
      if (x === null || x === undefined) continue
      const p = prune(x)
      if ((Array.isArray(p) && p.length === 0) || (p !== null && typeof p === 'object' && !Array.isArray(p) && Object.keys(p).length === 0)) continue
      out[k] = p
    }
    return out
  }
  return v
}

function parseQueryText (b: string, q: string): GraphQL.DocumentNode | undefined {
  if (q.trim() === '') return undefined
  try {
    source = q
    return gql().parse(q, PARSE_OPTIONS)
  } catch (err) {
    throw new BuiltinError(b, `${(err as Error).message} in GraphQL string`)
  }
}

function parseSchemaText (b: string, s: string): GraphQL.DocumentNode | undefined {
  if (s.trim() === '') return undefined
  try {
    source = s
    const doc = gql().parse(s)
    if (doc.definitions.some((d) => d.kind === 'OperationDefinition' || d.kind === 'FragmentDefinition')) throw new Error('unexpected executable definition in a schema')
    return doc
  } catch (err) {
    throw new BuiltinError(b, `${(err as Error).message} in GraphQL string`)
  }
}


/** graphql.parse / parse_and_verify: both ASTs, or why the query is not valid against the schema. */
function parseAndValidate (b: string, q: unknown, s: unknown): [unknown, unknown] {
  if (typeof q !== 'string' && !isObj(q)) throw new BuiltinError(b, 'operand 1 must be one of {string, object}')
  if (typeof s !== 'string' && !isObj(s)) throw new BuiltinError(b, 'operand 2 must be one of {string, object}')
  const qd = typeof q === 'string' ? parseQueryText(b, q) ?? EMPTY_DOC : astOperand(b, () => queryDocumentFromAst(q))
  const sd = typeof s === 'string' ? parseSchemaText(b, s) ?? EMPTY_DOC : astOperand(b, () => schemaDocumentFromAst(s))
  const schema = schemaOf(b, s)
  if (schema === undefined) throw new BuiltinError(b, 'invalid GraphQL schema')
  if (qd.definitions.length > 0 && !queryIsValid(schema, qd)) throw new BuiltinError(b, 'GraphQL query is not valid against the schema')
  return [prune(queryDoc(qd)), prune(schemaDoc(sd))]
}

const specs: BuiltinSpec[] = [
  {
    name: 'graphql.parse_query',
    impl: (_ctx, [q]) => {
      const b = 'graphql.parse_query'
      if (typeof q !== 'string') throw new BuiltinError(b, 'operand 1 must be string')
      return prune(queryDoc(parseQueryText(b, q) ?? EMPTY_DOC))
    },
  },
  {
    name: 'graphql.parse_schema',
    impl: (_ctx, [s]) => {
      const b = 'graphql.parse_schema'
      if (typeof s !== 'string') throw new BuiltinError(b, 'operand 1 must be string')
      try {
        return prune(schemaDoc(parseSchemaText(b, s) ?? EMPTY_DOC))
      } catch (err) {
        if (err instanceof BuiltinError) throw err
        throw new BuiltinError(b, (err as Error).message)
      }
    },
  },
  {
    name: 'graphql.parse',
    impl: (_ctx, [q, s]) => parseAndValidate('graphql.parse', q, s),
  },
  {
    name: 'graphql.parse_and_verify',
    impl: (_ctx, [q, s]) => {
      try {
        const [qa, sa] = parseAndValidate('graphql.parse_and_verify', q, s)
        return [true, qa, sa]
      } catch (err) {
        if (err instanceof BuiltinError) return [false, {}, {}]
        throw err
      }
    },
  },
  {
    name: 'graphql.schema_is_valid',
    impl: (_ctx, [s]) => schemaOf('graphql.schema_is_valid', s) !== undefined,
  },
  {
    name: 'graphql.is_valid',
    impl: (_ctx, [q, s]) => {
      const b = 'graphql.is_valid'
      let doc: GraphQL.DocumentNode
      try {
        if (typeof q === 'string') doc = q.trim() === '' ? EMPTY_DOC : gql().parse(q, PARSE_OPTIONS)
        else if (isObj(q)) doc = queryDocumentFromAst(q)
        else return false
      } catch {
        return false
      }
      const schema = schemaOf(b, s)
      if (schema === undefined) return false
      return doc.definitions.length === 0 || queryIsValid(schema, doc)
    },
  },
]

/** An AST operand json.Unmarshal refuses is a builtin error, as in OPA. */
function astOperand (b: string, read: () => GraphQL.DocumentNode): GraphQL.DocumentNode {
  try {
    return read()
  } catch (err) {
    throw new BuiltinError(b, (err as Error).message)
  }
}

export const graphqlBuiltins: BuiltinSpec[] = withLibrary(specs, 'graphql-js', gql)
