import { differentialTest } from './harness.js'
import { graphqlGroup } from './cases/graphql.js'

differentialTest(graphqlGroup)
