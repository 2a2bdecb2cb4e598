import t from 'tap'
import { createShutdown } from '../../shutdown.js'

function harness (close: () => Promise<void>, deadlineMs = 1000) {
  const exits: number[] = []
  const messages: string[] = []
  const log = { info: (_: object, m: string) => { messages.push(m) }, warn: (_: object, m: string) => { messages.push(m) }, error: (_: object, m: string) => { messages.push(m) } }
  const shutdown = createShutdown({ close, exit: (code) => { exits.push(code) }, log, deadlineMs })
  return { shutdown, exits, messages }
}
const tick = async (ms = 0): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

t.test('the first signal closes, then exits 0', async (t) => {
  let closed = 0
  const h = harness(async () => { closed++ })
  h.shutdown('SIGTERM')
  await tick()
  t.equal(closed, 1)
  t.same(h.exits, [0])
  t.same(h.messages, ['shutting down'])
})

t.test('a second signal while closing exits 1 at once', async (t) => {
  const h = harness(async () => { await tick(50) })
  h.shutdown('SIGTERM')
  h.shutdown('SIGINT')
  t.same(h.exits, [1], 'exited before close finished')
  await tick(80)
  t.same(h.exits, [1, 0], 'the late close still reports, harmlessly')
})

t.test('a close that fails exits 1', async (t) => {
  const h = harness(async () => { throw new Error('pool would not close') })
  h.shutdown('SIGTERM')
  await tick()
  t.same(h.exits, [1])
  t.match(h.messages, ['shutting down', 'shutdown failed'])
})

t.test('a close that overruns the deadline exits 1', async (t) => {
  const h = harness(async () => { await tick(200) }, 20)
  h.shutdown('SIGTERM')
  await tick(60)
  t.same(h.exits, [1])
  t.match(h.messages, ['shutting down', 'shutdown deadline passed: exiting'])
  await tick(200)
})
