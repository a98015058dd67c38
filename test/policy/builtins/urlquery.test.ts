import { differentialTest } from './harness.js'
import { urlqueryGroup } from './cases/urlquery.js'

differentialTest(urlqueryGroup)
