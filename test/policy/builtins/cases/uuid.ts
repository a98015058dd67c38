import { table, type Group } from './types.js'

export const uuidGroup = (): Group => ({
  name: 'uuid',
  tables: [
    { builtin: 'uuid.rfc4122', call: 'uuid.rfc4122($0) == uuid.rfc4122($0)', cases: [{ args: ['a'] }] },
    { builtin: 'uuid.rfc4122', call: 'regex.match("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", uuid.rfc4122($0))', cases: [{ args: ['a'] }, { args: [''] }] },
    { builtin: 'uuid.rfc4122', call: 'uuid.rfc4122($0) != uuid.rfc4122($1)', cases: [{ args: ['a', 'b'] }] },
    table('uuid.parse', [
      ['00000000-0000-0000-0000-000000000000'], ['ffffffff-ffff-ffff-ffff-ffffffffffff'], ['6ba7b810-9dad-11d1-80b4-00c04fd430c8'],
      ['C232AB00-9414-11EC-B3C8-9F6BDECED846'], ['000003e8-2d4f-21ee-8a00-325096b39f47'], ['000003e8-2d4f-21ee-8a01-335096b39f47'],
      ['000003e8-2d4f-21ee-8a02-305096b39f47'], ['000003e8-2d4f-21ee-8a07-315096b39f47'], ['f47ac10b-58cc-4372-a567-0e02b2c3d479'],
      ['f47ac10b-58cc-4372-c567-0e02b2c3d479'], ['f47ac10b-58cc-4372-e567-0e02b2c3d479'], ['f47ac10b-58cc-4372-0567-0e02b2c3d479'],
      ['urn:uuid:f47ac10b-58cc-4372-a567-0e02b2c3d479'], ['URN:UUID:f47ac10b-58cc-4372-a567-0e02b2c3d479'], ['{f47ac10b-58cc-4372-a567-0e02b2c3d479}'],
      ['(f47ac10b-58cc-4372-a567-0e02b2c3d479)'], ['f47ac10b58cc4372a5670e02b2c3d479'], ['f47ac10b-58cc-4372-a567-0e02b2c3d47'], ['f47ac10b_58cc-4372-a567-0e02b2c3d479'],
      ['g47ac10b-58cc-4372-a567-0e02b2c3d479'], ['1ec9414c-232a-6b00-b3c8-9f6bdeced846'], ['017f22e2-79b0-7cc3-98c4-dc0c0c07398f'], [''], [42],
    ]),
  ],
})
