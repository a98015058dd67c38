import { differentialTest } from './harness.js'
import { encodingGroup } from './cases/encoding.js'

differentialTest(encodingGroup)
