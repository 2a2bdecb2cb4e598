import { PassThrough } from 'node:stream'
import t from 'tap'
import { clientErrorHandler } from '../../plugins/errors.js'

const log = { debug: () => {} }
const error = (code: string): Error & { code: string } => Object.assign(new Error(code), { code })

t.test('a reset connection is left alone: there is no one to answer', async (t) => {
  const socket = new PassThrough()
  let written = ''
  socket.on('data', (d: Buffer) => { written += d.toString() })
  clientErrorHandler.call({ log }, error('ECONNRESET'), socket)
  t.equal(written, '')
  t.equal(socket.destroyed, false)
})

t.test('an already destroyed socket is not written to', async (t) => {
  const socket = new PassThrough()
  socket.destroy()
  t.doesNotThrow(() => { clientErrorHandler.call({ log }, error('ERR_HTTP_REQUEST_TIMEOUT'), socket) })
})

t.test('a socket that can no longer be written is just closed', async (t) => {
  const socket = new PassThrough()
  socket.end()
  clientErrorHandler.call({ log }, error('ERR_HTTP_REQUEST_TIMEOUT'), socket)
  t.equal(socket.destroyed, true)
})
