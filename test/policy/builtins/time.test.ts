import { differentialTest } from './harness.js'
import { timeGroup } from './cases/time.js'

differentialTest(timeGroup)
