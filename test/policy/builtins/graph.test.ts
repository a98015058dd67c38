import { differentialTest } from './harness.js'
import { graphGroup } from './cases/graph.js'

differentialTest(graphGroup)
