import { EventEmitter } from 'node:events'
import pg from 'pg'
import t from 'tap'
import { guardedPool } from '../../db/connection.js'

/** A stand-in for a node-postgres pool client: an event emitter with a release and an active query. */
function fakePool () {
  const released: Array<Error | undefined> = []
  const client = Object.assign(new EventEmitter(), { _activeQuery: null as unknown, release: (err?: Error) => { released.push(err) } })
  let ended = false
  const pool = Object.assign(new EventEmitter(), {
    connect: async () => {
      // node-postgres gives each checkout a fresh release function.
      client.release = (err?: Error) => { released.push(err) }
      return client
    },
    end: async () => { ended = true }
  })
  return { pool: pool as unknown as Pick<pg.Pool, 'connect' | 'end' | 'on'>, client, released, ended: () => ended }
}

t.test('a checked-out client losing its server reports the error instead of crashing the process', async (t) => {
  const { pool, client } = fakePool()
  const errors: Error[] = []
  guardedPool(pool, (err) => { errors.push(err) })
  // node-postgres emits 'connect' once per new client, before handing it out.
  ;(pool as unknown as EventEmitter).emit('connect', client)
  t.equal(client.listenerCount('error'), 1, 'the new client is listened to')
  client.emit('error', new Error('terminating connection due to administrator command'))
  t.same(errors.map((e) => e.message), ['terminating connection due to administrator command'])
})

t.test('a client given back with a query still in flight (timed out) is discarded, any other is kept', async (t) => {
  const { pool, client, released, ended } = fakePool()
  const guarded = guardedPool(pool, () => {})
  ;(await guarded.connect()).release()
  client._activeQuery = {}
  ;(await guarded.connect()).release()
  t.equal(released[0], undefined, 'an idle client goes back to the pool')
  t.match(released[1], /a query timed out on this connection/, 'a client with a query in flight is released with an error: the pool destroys it')
  await guarded.end()
  t.ok(ended(), 'end ends the pool')
})

t.test('node-postgres still keeps the in-flight query where the guard reads it', async (t) => {
  // A pg upgrade that renames the field would make every timed-out client look idle: caught here.
  const client = new pg.Client()
  t.ok('_activeQuery' in client)
  t.equal((client as unknown as { _activeQuery: unknown })._activeQuery, null)
})
