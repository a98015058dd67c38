/**
 * gqlparser AST objects (the JSON shape graphql.parse_query / parse_schema return) read back
 * into graphql-js documents, the way OPA's json.Unmarshal into gqlparser's structs reads them:
 * a member of the wrong JSON type is an error, an absent or null one its zero value.
 */
import type * as GraphQL from 'graphql'
import { isObj } from './args.js'

type Obj = Record<string, unknown>

/** json.Unmarshal's type checks: a member must have the Go field's JSON type or be absent or null. */
function field<T> (o: Obj, k: string, check: (v: unknown) => v is T, fallback: T): T {
  const v = o[k]
  if (v === undefined || v === null) return fallback
  if (!check(v)) throw new Error(`json: cannot unmarshal ${k}`)
  return v
}
const isString = (v: unknown): v is string => typeof v === 'string'
const isBool = (v: unknown): v is boolean => typeof v === 'boolean'
const isList = (v: unknown): v is unknown[] => Array.isArray(v)
const isObject = (v: unknown): v is Obj => isObj(v)
const strOf = (o: Obj, k: string): string => field(o, k, isString, '')
const listOf = (o: Obj, k: string): Obj[] => field(o, k, isList, []).map((x) => {
  if (!isObj(x)) throw new Error(`json: cannot unmarshal ${k}`)
  return x
})

const nameNode = (value: string): GraphQL.NameNode => ({ kind: 'Name' as GraphQL.Kind.NAME, value })
const namedType = (value: string): GraphQL.NamedTypeNode => ({ kind: 'NamedType' as GraphQL.Kind.NAMED_TYPE, name: nameNode(value) })
const description = (o: Obj): GraphQL.StringValueNode | undefined => {
  const d = strOf(o, 'Description')
  return d === '' ? undefined : { kind: 'StringValue' as GraphQL.Kind.STRING, value: d }
}

function typeFromAst (o: Obj | undefined): GraphQL.TypeNode {
  if (o === undefined) throw new Error('json: missing Type')
  const named = strOf(o, 'NamedType')
  const elem = field(o, 'Elem', isObject, undefined as unknown as Obj)
  const inner: GraphQL.NamedTypeNode | GraphQL.ListTypeNode = named !== '' || elem === undefined ? namedType(named) : { kind: 'ListType' as GraphQL.Kind.LIST_TYPE, type: typeFromAst(elem) }
  return field(o, 'NonNull', isBool, false) ? { kind: 'NonNullType' as GraphQL.Kind.NON_NULL_TYPE, type: inner } : inner
}

function valueFromAst (o: Obj | undefined): GraphQL.ValueNode {
  if (o === undefined) throw new Error('json: missing Value')
  const raw = strOf(o, 'Raw')
  const kind = field(o, 'Kind', (v): v is number => typeof v === 'number', 0)
  const children = listOf(o, 'Children')
  switch (kind) {
    case 0: return { kind: 'Variable' as GraphQL.Kind.VARIABLE, name: nameNode(raw) }
    case 1: return { kind: 'IntValue' as GraphQL.Kind.INT, value: raw }
    case 2: return { kind: 'FloatValue' as GraphQL.Kind.FLOAT, value: raw }
    case 3: return { kind: 'StringValue' as GraphQL.Kind.STRING, value: raw }
    case 4: return { kind: 'StringValue' as GraphQL.Kind.STRING, value: raw, block: true }
    case 5: return { kind: 'BooleanValue' as GraphQL.Kind.BOOLEAN, value: raw === 'true' }
    case 6: return { kind: 'NullValue' as GraphQL.Kind.NULL }
    case 7: return { kind: 'EnumValue' as GraphQL.Kind.ENUM, value: raw }
    case 8: return { kind: 'ListValue' as GraphQL.Kind.LIST, values: children.map((c) => valueFromAst(field(c, 'Value', isObject, undefined as unknown as Obj))) }
    case 9: return { kind: 'ObjectValue' as GraphQL.Kind.OBJECT, fields: children.map((c) => ({ kind: 'ObjectField' as GraphQL.Kind.OBJECT_FIELD, name: nameNode(strOf(c, 'Name')), value: valueFromAst(field(c, 'Value', isObject, undefined as unknown as Obj)) })) }
  }
  throw new Error(`unknown value kind ${kind}`)
}

const argumentsFromAst = (o: Obj, k = 'Arguments'): GraphQL.ArgumentNode[] => listOf(o, k).map((a) => ({ kind: 'Argument' as GraphQL.Kind.ARGUMENT, name: nameNode(strOf(a, 'Name')), value: valueFromAst(field(a, 'Value', isObject, undefined as unknown as Obj)) }))
const directivesFromAst = (o: Obj): GraphQL.DirectiveNode[] => listOf(o, 'Directives').map((d) => ({ kind: 'Directive' as GraphQL.Kind.DIRECTIVE, name: nameNode(strOf(d, 'Name')), arguments: argumentsFromAst(d) }))

/**
 * A selection set as gqlparser's UnmarshalSelectionSet reads it: it tries a Field first, and
 * any object unmarshals as a Field, so every selection is a field (Alias, Name, Arguments,
 * Directives, SelectionSet) — spreads and inline fragments in an AST object read as fields.
 */
function selectionSetFromAst (o: Obj): GraphQL.SelectionSetNode | undefined {
  const list = listOf(o, 'SelectionSet')
  if (list.length === 0) return undefined
  return {
    kind: 'SelectionSet' as GraphQL.Kind.SELECTION_SET,
    selections: list.map((f): GraphQL.FieldNode => {
      const name = strOf(f, 'Name'); const alias = strOf(f, 'Alias')
      const ss = selectionSetFromAst(f)
      return { kind: 'Field' as GraphQL.Kind.FIELD, name: nameNode(name), ...(alias !== '' && alias !== name ? { alias: nameNode(alias) } : {}), arguments: argumentsFromAst(f), directives: directivesFromAst(f), ...(ss === undefined ? {} : { selectionSet: ss }) }
    }),
  }
}

const EMPTY_SELECTION: GraphQL.SelectionSetNode = { kind: 'SelectionSet' as GraphQL.Kind.SELECTION_SET, selections: [] }

function variableDefinitionsFromAst (o: Obj, k: string): GraphQL.VariableDefinitionNode[] {
  return listOf(o, k).map((v) => {
    const dv = field(v, 'DefaultValue', isObject, undefined as unknown as Obj)
    return {
      kind: 'VariableDefinition' as GraphQL.Kind.VARIABLE_DEFINITION, variable: { kind: 'Variable' as GraphQL.Kind.VARIABLE, name: nameNode(strOf(v, 'Variable')) },
      type: typeFromAst(field(v, 'Type', isObject, undefined as unknown as Obj)), ...(dv === undefined ? {} : { defaultValue: valueFromAst(dv) as GraphQL.ConstValueNode }),
      directives: directivesFromAst(v) as GraphQL.ConstDirectiveNode[],
    }
  })
}

/** A gqlparser QueryDocument object (Operations, Fragments) as a document. */
export function queryDocumentFromAst (o: Obj): GraphQL.DocumentNode {
  const ops = listOf(o, 'Operations').map((op): GraphQL.OperationDefinitionNode => {
    const name = strOf(op, 'Name')
    const operation = strOf(op, 'Operation')
    if (!['query', 'mutation', 'subscription', ''].includes(operation)) throw new Error(`unknown operation ${operation}`)
    return {
      kind: 'OperationDefinition' as GraphQL.Kind.OPERATION_DEFINITION, operation: (operation === '' ? 'query' : operation) as GraphQL.OperationTypeNode,
      ...(name === '' ? {} : { name: nameNode(name) }), variableDefinitions: variableDefinitionsFromAst(op, 'VariableDefinitions'),
      directives: directivesFromAst(op), selectionSet: selectionSetFromAst(op) ?? EMPTY_SELECTION,
    }
  })
  const frags = listOf(o, 'Fragments').map((f): GraphQL.FragmentDefinitionNode => ({
    kind: 'FragmentDefinition' as GraphQL.Kind.FRAGMENT_DEFINITION, name: nameNode(strOf(f, 'Name')), variableDefinitions: variableDefinitionsFromAst(f, 'VariableDefinition'),
    typeCondition: namedType(strOf(f, 'TypeCondition')), directives: directivesFromAst(f), selectionSet: selectionSetFromAst(f) ?? EMPTY_SELECTION,
  }))
  return { kind: 'Document' as GraphQL.Kind.DOCUMENT, definitions: [...ops, ...frags] }
}

function inputValueFromAst (a: Obj): GraphQL.InputValueDefinitionNode {
  const dv = field(a, 'DefaultValue', isObject, undefined as unknown as Obj)
  return {
    kind: 'InputValueDefinition' as GraphQL.Kind.INPUT_VALUE_DEFINITION, description: description(a), name: nameNode(strOf(a, 'Name')),
    type: typeFromAst(field(a, 'Type', isObject, undefined as unknown as Obj)), ...(dv === undefined ? {} : { defaultValue: valueFromAst(dv) as GraphQL.ConstValueNode }),
    directives: directivesFromAst(a) as GraphQL.ConstDirectiveNode[],
  }
}

const DEFINITION_KINDS: Record<string, [string, string]> = {
  OBJECT: ['ObjectTypeDefinition', 'ObjectTypeExtension'], INTERFACE: ['InterfaceTypeDefinition', 'InterfaceTypeExtension'], UNION: ['UnionTypeDefinition', 'UnionTypeExtension'],
  ENUM: ['EnumTypeDefinition', 'EnumTypeExtension'], INPUT_OBJECT: ['InputObjectTypeDefinition', 'InputObjectTypeExtension'], SCALAR: ['ScalarTypeDefinition', 'ScalarTypeExtension'],
}

function definitionFromAst (d: Obj, extension: boolean): GraphQL.DefinitionNode {
  const k = strOf(d, 'Kind')
  const kinds = DEFINITION_KINDS[k]
  if (kinds === undefined) throw new Error(`unknown definition kind ${k}`)
  const node: Record<string, unknown> = { kind: kinds[extension ? 1 : 0], name: nameNode(strOf(d, 'Name')), directives: directivesFromAst(d) }
  if (!extension) node.description = description(d)
  if (k === 'OBJECT' || k === 'INTERFACE') node.interfaces = field(d, 'Interfaces', isList, []).map((i) => namedType(String(i)))
  if (k === 'UNION') node.types = field(d, 'Types', isList, []).map((t) => namedType(String(t)))
  if (k === 'ENUM') node.values = listOf(d, 'EnumValues').map((v) => ({ kind: 'EnumValueDefinition', description: description(v), name: nameNode(strOf(v, 'Name')), directives: directivesFromAst(v) }))
  if (k === 'INPUT_OBJECT') node.fields = listOf(d, 'Fields').map(inputValueFromAst)
  if (k === 'OBJECT' || k === 'INTERFACE') {
    node.fields = listOf(d, 'Fields').map((f) => ({
      kind: 'FieldDefinition', description: description(f), name: nameNode(strOf(f, 'Name')), arguments: listOf(f, 'Arguments').map(inputValueFromAst),
      type: typeFromAst(field(f, 'Type', isObject, undefined as unknown as Obj)), directives: directivesFromAst(f),
    }))
  }
  return node as unknown as GraphQL.DefinitionNode
}

/** A gqlparser SchemaDocument object (Schema, SchemaExtension, Directives, Definitions, Extensions) as a document. */
export function schemaDocumentFromAst (o: Obj): GraphQL.DocumentNode {
  const operationTypes = (s: Obj): GraphQL.OperationTypeDefinitionNode[] => listOf(s, 'OperationTypes').map((t) => ({
    kind: 'OperationTypeDefinition' as GraphQL.Kind.OPERATION_TYPE_DEFINITION, operation: strOf(t, 'Operation') as GraphQL.OperationTypeNode, type: namedType(strOf(t, 'Type')),
  }))
  const definitions: GraphQL.DefinitionNode[] = [
    ...listOf(o, 'Schema').map((s): GraphQL.SchemaDefinitionNode => ({ kind: 'SchemaDefinition' as GraphQL.Kind.SCHEMA_DEFINITION, description: description(s), directives: directivesFromAst(s) as GraphQL.ConstDirectiveNode[], operationTypes: operationTypes(s) })),
    ...listOf(o, 'SchemaExtension').map((s): GraphQL.SchemaExtensionNode => ({ kind: 'SchemaExtension' as GraphQL.Kind.SCHEMA_EXTENSION, directives: directivesFromAst(s) as GraphQL.ConstDirectiveNode[], operationTypes: operationTypes(s) })),
    ...listOf(o, 'Directives').map((d): GraphQL.DirectiveDefinitionNode => ({
      kind: 'DirectiveDefinition' as GraphQL.Kind.DIRECTIVE_DEFINITION, description: description(d), name: nameNode(strOf(d, 'Name')), arguments: listOf(d, 'Arguments').map(inputValueFromAst),
      repeatable: field(d, 'IsRepeatable', isBool, false), locations: field(d, 'Locations', isList, []).map((l) => nameNode(String(l))),
    })),
    ...listOf(o, 'Definitions').map((d) => definitionFromAst(d, false)),
    ...listOf(o, 'Extensions').map((d) => definitionFromAst(d, true)),
  ]
  return { kind: 'Document' as GraphQL.Kind.DOCUMENT, definitions }
}
