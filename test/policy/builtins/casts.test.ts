import { differentialTest } from './harness.js'
import { castsGroup } from './cases/casts.js'

differentialTest(castsGroup)
