import { differentialTest } from './harness.js'
import { numbersGroup } from './cases/numbers.js'

differentialTest(numbersGroup)
