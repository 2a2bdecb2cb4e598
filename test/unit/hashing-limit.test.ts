import t from 'tap'
import { HashingBusyError } from '../../services/errors.js'
import { limitHashing } from '../../services/hashing-limit.js'
import type { PasswordHasher } from '../../services/ports.js'

/** A hasher whose every call waits until the test finishes it, counting how many run at once. */
function gatedHasher () {
  const pending: Array<{ finish: () => void, fail: (err: Error) => void }> = []
  const state = { running: 0, most: 0 }
  const call = async <R>(result: R): Promise<R> => {
    state.running++
    state.most = Math.max(state.most, state.running)
    try {
      await new Promise<void>((resolve, reject) => pending.push({ finish: resolve, fail: reject }))
      return result
    } finally {
      state.running--
    }
  }
  const hasher: PasswordHasher = { hash: async (p) => await call(`hashed:${p}`), verify: async (h, p) => await call(h === `hashed:${p}`) }
  const settle = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }
  return { hasher, pending, state, settle }
}

t.test('runs at most `concurrency` hashes at once; the rest wait their turn in order', async (t) => {
  const { hasher, pending, state, settle } = gatedHasher()
  const limited = limitHashing(hasher, { concurrency: 2, maxQueued: 10 })
  const results = [limited.hash('a'), limited.verify('hashed:b', 'b'), limited.hash('c'), limited.verify('hashed:d', 'x'), limited.hash('e')]
  await settle()
  t.equal(state.running, 2, 'two running, three waiting')
  while (pending.length > 0) {
    pending.shift()?.finish()
    await settle()
    t.ok(state.running <= 2)
  }
  t.same(await Promise.all(results), ['hashed:a', true, 'hashed:c', false, 'hashed:e'])
  t.equal(state.most, 2)
  t.equal(state.running, 0)
})

t.test('past maxQueued waiting, the next is refused with 503 at once; a failure frees its slot', async (t) => {
  const { hasher, pending, settle } = gatedHasher()
  const limited = limitHashing(hasher, { concurrency: 1, maxQueued: 1 })
  const running = limited.hash('a')
  const waiting = limited.hash('b')
  await t.rejects(limited.hash('c'), HashingBusyError)
  await settle()
  pending.shift()?.fail(new Error('argon2 failed'))
  await t.rejects(running, /argon2 failed/)
  await settle()
  t.equal(pending.length, 1, 'the waiting hash got the slot')
  pending.shift()?.finish()
  t.equal(await waiting, 'hashed:b')
  const after = limited.hash('d')
  await settle()
  pending.shift()?.finish()
  t.equal(await after, 'hashed:d', 'the slot is free again')
})
