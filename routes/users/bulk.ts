import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Readable } from 'node:stream'
import { Type, type TSchema } from 'typebox'
import type { PublicUserRecord } from '../../services/ports.js'
import { bearerAuth, problems, UserRef } from '../schemas.js'

export const MAX_LOOKUP_IDS = 100
const NDJSON = 'application/x-ndjson'

// format: 'uuid' alone also admits 'urn:uuid:…', which PostgreSQL's uuid type refuses (a 500, not a 400).
const LookupId = Type.String({ format: 'uuid', pattern: '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$' })

const LookupBody = Type.Object({
  ids: Type.Array(LookupId, { minItems: 1, maxItems: MAX_LOOKUP_IDS, uniqueItems: true, description: `1-${MAX_LOOKUP_IDS} distinct user ids` })
}, { additionalProperties: false })

const LookupResult = Type.Object({
  data: Type.Array(UserRef, { description: 'The users found, in the order their ids were given' }),
  not_found: Type.Array(Type.String({ format: 'uuid' }), { description: 'The ids given that name no user, lower-cased, in the order given' })
})

// OpenAPI 3.1 has no item schema for streamed media types: the schema given is that of each line.
const ExportStream = {
  description: 'Every user, newest first: one User object per line (NDJSON), streamed as it is read',
  content: { [NDJSON]: { schema: Type.Ref('User') } }
} as unknown as TSchema

/**
 * Admin reads in bulk, apart from the per-user routes: many users by id in one query, and every user
 * as a stream. All need a bearer token.
 */
const bulkUsers: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRequest', app.authenticate)

  app.post('/lookup', {
    schema: {
      operationId: 'lookupUsers',
      tags: ['users'],
      summary: 'Get many users by id in one request (admin)',
      description: 'Answered with one database query however many ids are given. Ids that name no user are listed in not_found.',
      security: bearerAuth,
      body: LookupBody,
      response: { 200: LookupResult, ...problems(400, 401, 403, 413, 415) }
    }
  }, async (request) => await app.users.lookup(request.actor, request.body.ids))

  app.get('/export', {
    schema: {
      operationId: 'exportUsers',
      tags: ['users'],
      summary: 'Export every user as NDJSON (admin)',
      description: `${NDJSON}: one User per line, newest first. The users are read in keyset-ordered batches only as ` +
        'fast as the client takes them, so the export of any number of users holds one batch in memory; a client that ' +
        'disconnects stops it. An error after the first line ends the stream early rather than answering problem+json.',
      security: bearerAuth,
      response: { 200: ExportStream, ...problems(401, 403) }
    }
  }, async (request, reply) => {
    const stop = new AbortController()
    // Throws for a non-admin here, before anything is sent: a 403, not a broken stream.
    const batches = app.users.exportAll(request.actor, { signal: stop.signal })
    // 'close' comes when the response ends or the connection drops: either way no batch is read after it.
    reply.raw.once('close', () => { stop.abort() })
    // The route's own response schema serializes each line, so a line is exactly what a User is elsewhere.
    const serialize = reply.getSerializationFunction('200', NDJSON) as unknown as (user: PublicUserRecord) => string
    async function * lines (): AsyncGenerator<string> {
      for await (const batch of batches) {
        let chunk = ''
        for (const user of batch) chunk += `${serialize(user)}\n`
        yield chunk
      }
    }
    // Not object mode: a batch's text counts as bytes against the high-water mark, so at most one
    // batch waits in the stream and the next is read only when the socket has drained.
    return await reply.type(NDJSON).header('cache-control', 'no-store').send(Readable.from(lines(), { objectMode: false }))
  })
}

export default bulkUsers
