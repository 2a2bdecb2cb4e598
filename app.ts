import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { SpanExporter } from '@opentelemetry/sdk-trace-base'
import Fastify, { type FastifyInstance } from 'fastify'
import { randomUUID } from 'node:crypto'
import type { Config } from './config.js'
import authPlugin from './plugins/auth.js'
import dbPlugin from './plugins/db.js'
import errorsPlugin, { clientErrorHandler, frameworkErrorHandler } from './plugins/errors.js'
import lifecyclePlugin from './plugins/lifecycle.js'
import loadSheddingPlugin from './plugins/load-shedding.js'
import metricsPlugin from './plugins/metrics.js'
import redisPlugin from './plugins/redis.js'
import throttlePlugin from './plugins/throttle.js'
import openapiPlugin from './plugins/openapi.js'
import securityPlugin from './plugins/security.js'
import servicesPlugin from './plugins/services.js'
import validationPlugin from './plugins/validation.js'
import authRoutes from './routes/auth/index.js'
import healthRoutes from './routes/health/index.js'
import bulkUserRoutes from './routes/users/bulk.js'
import userRoutes from './routes/users/index.js'
import wellKnownRoutes from './routes/well-known/index.js'
import { User } from './routes/schemas.js'
import { lazyChildLoggerFactory } from './request-logger.js'
import type { PasswordHasher } from './services/ports.js'

export interface BuildOptions {
  /** Replaces the argon2id hasher (tests use a cheaper one). */
  hasher?: PasswordHasher
  /** Where log lines go (default stdout); tests capture them this way. */
  logStream?: { write: (line: string) => void }
  /** Turns tracing on, with every span going here as it ends (tests pass an in-memory exporter). */
  spanExporter?: SpanExporter
}

// A caller's request id is kept when it is short and plain, so logs correlate across services;
// anything else is replaced, so it cannot forge log lines or bloat them.
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Builds the app: plugins and routes, in the order they depend on each other. Never listens. */
export async function buildApp (config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: {
      level: config.logLevel,
      // Belt and braces: nothing logs these today, and a future debug line must not start to.
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.current_password', '*.password_hash', '*.access_token'], censor: '[redacted]' },
      ...(options.logStream !== undefined && { stream: options.logStream })
    },
    bodyLimit: config.bodyLimit,
    requestTimeout: config.http.requestTimeoutMs,
    keepAliveTimeout: config.http.keepAliveTimeoutMs,
    // Node checks these timeouts only every connectionsCheckingInterval (30 s by default), so a
    // 10 s headers timeout would really be up to 40 s: check often enough to honour the setting.
    http: { headersTimeout: config.http.headersTimeoutMs, connectionsCheckingInterval: Math.min(1000, config.http.headersTimeoutMs / 2) },
    clientErrorHandler,
    frameworkErrors: frameworkErrorHandler,
    childLoggerFactory: lazyChildLoggerFactory,
    // During the drain a request that reached an open connection is served (with Connection: close),
    // not refused: a client will not safely retry a POST elsewhere. SHUTDOWN_TIMEOUT_MS bounds it.
    return503OnClosing: false,
    trustProxy: config.trustProxy,
    // Off, so that genReqId sees every request and can refuse a bad header instead of trusting it.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && SANE_REQUEST_ID.test(given) ? given : randomUUID()
    }
  }).withTypeProvider<TypeBoxTypeProvider>()
  // First, so the request span starts before any other hook and every route is seen. Imported only
  // when tracing is on: without it, not one OpenTelemetry module is loaded.
  const spansTo = options.spanExporter ?? config.tracing.endpoint
  if (spansTo !== undefined) {
    const { default: tracingPlugin } = await import('./plugins/tracing.js')
    await app.register(tracingPlugin, { serviceName: config.tracing.serviceName, exportTo: spansTo })
  }

  // Infrastructure first: how requests are validated and errors answered, then the stores.
  await app.register(lifecyclePlugin)
  await app.register(validationPlugin)
  await app.register(errorsPlugin)
  await app.register(securityPlugin, { corsOrigins: config.corsOrigins })
  await app.register(openapiPlugin)
  await app.register(dbPlugin, { config: config.database, observeQuery: app.tracing?.observeQuery })
  await app.register(redisPlugin, { url: config.redisUrl })
  await app.register(throttlePlugin, { config: config.throttle })
  await app.register(loadSheddingPlugin, { config: config.loadShedding })
  await app.register(metricsPlugin, { token: config.metricsToken })
  // Our decorators: token verification, then the domain services built on the repositories.
  await app.register(authPlugin, { config: config.jwt })
  await app.register(servicesPlugin, { config, ...(options.hasher !== undefined && { hasher: options.hasher }) })

  app.addSchema(User)
  await app.register(healthRoutes)
  await app.register(userRoutes, { prefix: '/api/users' })
  await app.register(bulkUserRoutes, { prefix: '/api/users' })
  await app.register(authRoutes, { prefix: '/api/auth' })
  await app.register(wellKnownRoutes)
  return app
}
