import { differentialTest } from './harness.js'
import { semverGroup } from './cases/semver.js'

differentialTest(semverGroup)
