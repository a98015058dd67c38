/** Every differential case table, in the order `npm run conformance` prints them. */
import type { Group } from './types.js'
import { timeGroup } from './time.js'
import { encodingGroup } from './encoding.js'
import { unitsGroup } from './units.js'
import { uuidGroup } from './uuid.js'
import { semverGroup } from './semver.js'
import { urlqueryGroup } from './urlquery.js'
import { globGroup } from './glob.js'
import { numbersGroup } from './numbers.js'
import { objectsGroup } from './objects.js'
import { jsonGroup } from './json.js'
import { stringsGroup } from './strings.js'
import { netGroup } from './net.js'
import { regexGroup, regexRedosGroup } from './regex.js'
import { cryptoGroup } from './crypto.js'
import { jwtGroup } from './jwt.js'
import { x509Group } from './x509.js'
import { jsonSchemaGroup } from './json-schema.js'
import { graphGroup } from './graph.js'
import { httpGroup } from './http.js'
import { uriGroup } from './uri.js'
import { providersGroup } from './providers.js'
import { castsGroup } from './casts.js'
import { randGroup } from './rand.js'
import { traceGroup } from './trace.js'
import { graphqlGroup } from './graphql.js'
import { yamlGroup } from './yaml.js'
import { sprintfGroup } from './sprintf.js'

export const groups: Array<() => Group | Promise<Group>> = [
  timeGroup, encodingGroup, unitsGroup, uuidGroup, semverGroup, urlqueryGroup, globGroup, numbersGroup, objectsGroup, jsonGroup,
  stringsGroup, netGroup, regexGroup, regexRedosGroup, cryptoGroup, jwtGroup, x509Group, jsonSchemaGroup, graphGroup, httpGroup, uriGroup, providersGroup, castsGroup, randGroup, traceGroup, graphqlGroup, yamlGroup, sprintfGroup,
]
