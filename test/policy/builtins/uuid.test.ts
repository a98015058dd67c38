import { differentialTest } from './harness.js'
import { uuidGroup } from './cases/uuid.js'

differentialTest(uuidGroup)
