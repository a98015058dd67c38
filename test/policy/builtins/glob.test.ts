import { differentialTest } from './harness.js'
import { globGroup } from './cases/glob.js'

differentialTest(globGroup)
