/**
 * The fastify application: build() returns the app without listening (tests use inject();
 * listen lives in src/server/listen.ts). Routes are thin: translate, call decision/, reply.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import type { BundleManager } from '../bundles/activate.js'
import type { DecisionService } from '../decision/decide.js'
import { PortcullisError, isPortcullisError } from '../errors.js'
import { dataRoutes } from './routes/data.js'
import { healthRoutes } from './routes/health.js'

export interface BuildOptions {
  decisions: DecisionService
  manager: BundleManager
  /** Largest request body in bytes. */
  bodyLimit?: number
  logger?: boolean | object
}

export function build (opts: BuildOptions): FastifyInstance {
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    routerOptions: { ignoreTrailingSlash: true },
  })

  app.setErrorHandler((err, request, reply) => {
    // OPA error shape: {code, message, errors?}
    if (isPortcullisError(err)) {
      const body: Record<string, unknown> = { code: err.opaCode, message: err.message, portcullis_code: err.code }
      const opaCode = err.details.opa_code
      if (typeof opaCode === 'string') body.errors = [{ code: opaCode, message: err.message }]
      return reply.status(err.status).send(body)
    }
    const e = err as { statusCode?: number, code?: string, message: string, validation?: unknown }
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.status(413).send({ code: 'invalid_parameter', message: `request body exceeds ${opts.bodyLimit ?? 1048576} bytes`, portcullis_code: 'PORTCULLIS_INPUT_TOO_LARGE' })
    }
    if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) {
      return reply.status(400).send({ code: 'invalid_parameter', message: e.message, portcullis_code: 'PORTCULLIS_INPUT_INVALID' })
    }
    request.log.error({ err }, 'unhandled error')
    const internal = new PortcullisError('PORTCULLIS_INTERNAL', 'internal error')
    return reply.status(500).send({ code: internal.opaCode, message: internal.message, portcullis_code: internal.code })
  })

  app.register(dataRoutes, { decisions: opts.decisions })
  app.register(healthRoutes, { manager: opts.manager })
  return app
}
