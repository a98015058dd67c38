import { table, type Group } from './types.js'

export const encodingGroup = (): Group => ({
  name: 'encoding',
  tables: [
    table('hex.encode', [[''], ['abc'], ['héllo wörld'], ['\u0000\u00ff'], ['🦀'], [1], [null]]),
    table('hex.decode', [[''], ['616263'], ['efbbbf61'], ['61626'], ['6g'], ['C3A9'], ['c3a9'], ['ff'], ['f09fa680'], [' 61'], [[]]]),
    table('base64url.encode_no_pad', [[''], ['a'], ['ab'], ['abc'], ['\u00ff\u00fe?>'], ['🦀🦀'], [3]]),
  ],
})
