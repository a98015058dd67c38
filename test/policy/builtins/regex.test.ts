import { differentialTest } from './harness.js'
import { regexGroup } from './cases/regex.js'

differentialTest(regexGroup)
