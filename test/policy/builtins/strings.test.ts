import { differentialTest } from './harness.js'
import { stringsGroup } from './cases/strings.js'

differentialTest(stringsGroup)
