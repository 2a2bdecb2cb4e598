import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    /** Process state the probes report; `draining` is set by server.ts when a shutdown signal arrives. */
    lifecycle: { draining: boolean }
  }
}

export default fp(async function lifecycle (app) {
  app.decorate('lifecycle', { draining: false })
}, { name: 'lifecycle' })
