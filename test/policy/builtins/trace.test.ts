import { differentialTest } from './harness.js'
import { traceGroup } from './cases/trace.js'

differentialTest(traceGroup)
