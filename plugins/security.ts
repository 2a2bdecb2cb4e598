import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import fp from 'fastify-plugin'

/** Security headers on every response, and CORS only for the configured origins. */
export default fp<{ corsOrigins: string[] }>(async function security (app, { corsOrigins }) {
  // The API serves JSON only, so the strictest policy fits; the /docs page sets its own.
  await app.register(helmet, { global: true })
  await app.register(cors, {
    // An empty allowlist means no cross-origin access at all; a wildcard is never used.
    origin: corsOrigins.length > 0 ? corsOrigins : false,
    methods: ['GET', 'POST', 'PATCH', 'DELETE'],
    allowedHeaders: ['authorization', 'content-type', 'x-request-id'],
    exposedHeaders: ['location', 'retry-after', 'x-request-id', 'www-authenticate'],
    maxAge: 600
  })
}, { name: 'security' })
