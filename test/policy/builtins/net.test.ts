import { differentialTest } from './harness.js'
import { netGroup } from './cases/net.js'

differentialTest(netGroup)
