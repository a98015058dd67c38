import { differentialTest } from './harness.js'
import { jsonGroup } from './cases/json.js'

differentialTest(jsonGroup)
