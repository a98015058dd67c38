import { differentialTest } from './harness.js'
import { cryptoGroup } from './cases/crypto.js'

differentialTest(cryptoGroup)
