import { differentialTest } from './harness.js'
import { jsonSchemaGroup } from './cases/json-schema.js'

differentialTest(jsonSchemaGroup)
