import { differentialTest } from './harness.js'
import { x509Group } from './cases/x509.js'

differentialTest(x509Group)
