import { differentialTest } from './harness.js'
import { objectsGroup } from './cases/objects.js'

differentialTest(objectsGroup)
