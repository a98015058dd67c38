import { differentialTest } from './harness.js'
import { randGroup } from './cases/rand.js'

differentialTest(randGroup)
