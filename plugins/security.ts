import cors from '@fastify/cors'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'
import type { IncomingMessage, ServerResponse } from 'node:http'

/**
 * The headers helmet sets for these options. They depend on nothing in the request (no CSP
 * directive here is a function), so they are worked out once: @fastify/helmet rebuilds helmet's
 * middleware chain on every request, which measured as the costliest hook of a GET.
 */
export function helmetHeaders (options: Readonly<HelmetOptions> = {}): Record<string, string> {
  const headers: Record<string, string> = {}
  const recorder = {
    setHeader (name: string, value: string | number) { headers[name.toLowerCase()] = String(value) },
    removeHeader (name: string) { Reflect.deleteProperty(headers, name.toLowerCase()) }
  }
  // Each of helmet's middlewares sets or removes a header and calls next; none of them fails.
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, () => {})
  return headers
}

/**
 * The headers of every response. The API serves JSON only, so helmet's strict defaults fit; the
 * /docs page sets its own CSP. Exported for the answers that no hook sees (frameworkErrorHandler).
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze(helmetHeaders())

/** Security headers on every response, and CORS only for the configured origins. */
export default fp<{ corsOrigins: string[] }>(async function security (app, { corsOrigins }) {
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(SECURITY_HEADERS).header('x-request-id', request.id)
    done()
  })
  // Without allowed origins there is nothing for CORS to answer: a browser's cross-origin request
  // and preflight get no CORS headers either way, and every other request skips the hook.
  if (corsOrigins.length === 0) return
  await app.register(cors, {
    // Exact origins only; a wildcard is never used.
    origin: corsOrigins,
    methods: ['GET', 'POST', 'PATCH', 'DELETE'],
    allowedHeaders: ['authorization', 'content-type', 'x-request-id'],
    exposedHeaders: ['location', 'retry-after', 'x-request-id', 'www-authenticate'],
    maxAge: 600
  })
}, { name: 'security' })
