import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'

const health: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/health', {
    // Probes hit this every few seconds; logging each would drown the useful lines.
    logLevel: 'warn',
    schema: {
      operationId: 'getHealth',
      tags: ['health'],
      summary: 'Liveness: the process is up',
      response: { 200: Type.Object({ status: Type.Literal('ok') }) }
    }
  }, async () => ({ status: 'ok' as const }))
}

export default health
