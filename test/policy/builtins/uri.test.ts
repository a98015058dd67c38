import { differentialTest } from './harness.js'
import { uriGroup } from './cases/uri.js'

differentialTest(uriGroup)
