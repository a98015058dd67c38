import { differentialTest } from './harness.js'
import { sprintfGroup } from './cases/sprintf.js'

differentialTest(sprintfGroup)
