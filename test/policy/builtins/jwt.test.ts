import { differentialTest } from './harness.js'
import { jwtGroup } from './cases/jwt.js'

differentialTest(jwtGroup)
