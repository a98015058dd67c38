/**
 * OPA Data API (minimal form): POST /v1/data/{path} with {"input": ...} and
 * GET /v1/data/{path}?input=<json>. Undefined decisions answer 200 without `result`, as OPA does.
 */
import type { FastifyPluginAsync } from 'fastify'
import type { DecisionService } from '../../decision/decide.js'
import { PolicyError } from '../../errors.js'

const responseSchema = {
  200: {
    type: 'object',
    properties: {
      result: {},
      decision_id: { type: 'string' },
      warning: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } },
    },
  },
}

export const dataRoutes: FastifyPluginAsync<{ decisions: DecisionService }> = async (app, { decisions }) => {
  const answer = (path: string, input: unknown, hasInput: boolean): Record<string, unknown> => {
    const d = decisions.decide({ path, input })
    const body: Record<string, unknown> = { decision_id: d.decision_id }
    if (d.defined) body.result = d.result
    if (!hasInput) body.warning = { code: 'api_usage_warning', message: "'input' key missing from the request" }
    return body
  }

  app.post<{ Params: { '*': string }, Body: { input?: unknown } | undefined }>('/v1/data/*', {
    schema: { body: { type: ['object', 'null'] }, response: responseSchema },
  }, async (request) => {
    const body = request.body ?? {}
    const hasInput = Object.hasOwn(body, 'input')
    return answer(request.params['*'], body.input, hasInput)
  })

  app.get<{ Params: { '*': string }, Querystring: { input?: string } }>('/v1/data/*', {
    schema: { querystring: { type: 'object', properties: { input: { type: 'string' } } }, response: responseSchema },
  }, async (request) => {
    const raw = request.query.input
    let input: unknown
    if (raw !== undefined) {
      try {
        input = JSON.parse(raw)
      } catch (err) {
        throw new PolicyError('PORTCULLIS_INPUT_INVALID', `query parameter input is not valid JSON (${(err as Error).message})`, { parameter: 'input' })
      }
    }
    return answer(request.params['*'], input, raw !== undefined)
  })
}
