import { differentialTest } from './harness.js'
import { unitsGroup } from './cases/units.js'

differentialTest(unitsGroup)
