import { differentialTest } from './harness.js'
import { providersGroup } from './cases/providers.js'

differentialTest(providersGroup)
