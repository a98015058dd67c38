import { table, type Group } from './types.js'

const person = { type: 'object', properties: { name: { type: 'string', minLength: 2 }, age: { type: 'integer', minimum: 0 } }, required: ['name'] }

export const jsonSchemaGroup = (): Group => ({
  name: 'json-schema',
  tables: [
    table('json.verify_schema', [[{ type: 'object' }], [person], [JSON.stringify(person)], [{ type: 'objectx' }], [{}], [true], ['{"type":"string"}']]),
    { builtin: 'json.verify_schema', call: 'json.verify_schema($0)[0]', cases: [{ args: ['{bad json'] }, { args: [{ type: 5 }] }, { args: [{ properties: { a: { type: ['string', 'bogus'] } } }] }] },
    table('json.match_schema', [
      [{ name: 'ab' }, person], [{ name: 'ab', age: 3 }, JSON.stringify(person)], [{}, person], [{ name: 1 }, person], [{ name: 'a' }, person], [{ name: 'ab', age: -1 }, person],
      [{ name: 'ab', age: 1.5 }, person], ['{"name":"xyz"}', person], ['x', { type: 'string', pattern: '^[a-z]+$' }], ['X', { type: 'string', pattern: '^[a-z]+$' }],
      [[1, 2], { type: 'array', items: { type: 'integer' } }], [3, { type: 'string' }], [null, { type: 'null' }], ['b', { enum: ['a', 'b'] }],
      [{ a: 1, b: 2 }, { type: 'object', properties: { a: {} }, additionalProperties: false }], [5, { maximum: 4 }], ['abc', { maxLength: 2 }],
      [{ name: 'ab' }, { type: 'objectx' }], [{ x: { y: 'z' } }, { properties: { x: { properties: { y: { type: 'integer' } } } } }],
    ]),
    { builtin: 'json.match_schema', call: 'json.match_schema($0, $1)[0]', cases: [{ args: [{ a: [1, 'x'] }, { properties: { a: { type: 'array', items: { type: 'integer' } } } }] }, { args: ['{bad', person] }] },
  ],
})
