import t from 'tap'
import { ForbiddenError, InvalidEmailError } from '../../services/errors.js'
import type { KeysetPosition, PublicUserRecord } from '../../services/ports.js'
import { createUserService, EXPORT_BATCH_SIZE, type Actor, type User } from '../../services/user-service.js'
import { an, FakePasswordHasher, FakeUserRepository } from '../fakes.js'

const MISSING_ID = '01890000-0000-7000-8000-000000000000'
const OTHER_MISSING_ID = '01890000-0000-7000-8000-0000000000ff'

// Two users per millisecond, so ids break ties in the keyset order, across batch boundaries too.
function steppedClock () {
  let calls = 0
  return () => new Date(Date.UTC(2024, 0, 1) + Math.floor(calls++ / 2))
}

let counter = 0
const fields = () => {
  counter++
  return { email: `bulk${counter}@example.com`, username: `bulk${counter}`, password: `password-${counter}` }
}
const as = (user: User): Actor => ({ id: user.id, role: user.role })

/** An admin, `count` users, and a repository that records the keyset position of every list call. */
async function setup (count: number) {
  const repo = new FakeUserRepository({ now: steppedClock() })
  const listCalls: Array<{ limit: number, after: KeysetPosition | undefined }> = []
  // The export reads through listPublic: public fields, timestamps as text.
  const listPublic = repo.listPublic.bind(repo)
  repo.listPublic = async (limit, after) => {
    listCalls.push({ limit, after })
    return await listPublic(limit, after)
  }
  const users = createUserService(repo, new FakePasswordHasher())
  const admin = await users.create(fields(), 'admin')
  const created = [admin]
  for (let i = 0; i < count; i++) created.push(await users.create(fields()))
  return { repo, users, admin, created, listCalls }
}

async function collect (batches: AsyncIterable<PublicUserRecord[]>): Promise<PublicUserRecord[][]> {
  const all: PublicUserRecord[][] = []
  for await (const batch of batches) all.push(batch)
  return all
}

t.test('lookup', async (t) => {
  t.test('returns the users found in the order asked, and the missing ids, from one repository call', async (t) => {
    const { repo, users, admin, created } = await setup(4)
    const [, a, b, c] = created.map((u) => u.id) as [string, string, string, string]
    const result = await users.lookup(as(admin), [c, MISSING_ID, a, OTHER_MISSING_ID, b])
    t.same(result.data.map((u) => u.id), [c, a, b])
    t.same(result.not_found, [MISSING_ID, OTHER_MISSING_ID])
    t.equal(repo.findByIdsCalls, 1, 'one call, not one per id')
    t.notOk(result.data.some((u) => 'password_hash' in u), 'no password hashes')
  })

  t.test('matches ids in any letter case and reports each id once, lower-cased', async (t) => {
    const { users, admin, created } = await setup(1)
    const id = created[1]?.id as string
    const result = await users.lookup(as(admin), [id.toUpperCase(), id, MISSING_ID.toUpperCase()])
    t.same(result.data.map((u) => u.id), [id])
    t.same(result.not_found, [MISSING_ID])
  })

  t.test('with nothing found, data is empty', async (t) => {
    const { users, admin } = await setup(0)
    t.same(await users.lookup(as(admin), [MISSING_ID]), { data: [], not_found: [MISSING_ID] })
  })

  t.test('is for admins only, even for one\'s own id, and reads nothing first', async (t) => {
    const { repo, users, created } = await setup(1)
    const user = created[1] as User
    await t.rejects(users.lookup(as(user), [user.id]), an(ForbiddenError))
    t.equal(repo.findByIdsCalls, 0)
  })
})

t.test('list by email', async (t) => {
  t.test('finds the one user with that address, normalised, with no cursor', async (t) => {
    const { users, admin, created } = await setup(3)
    const user = created[2] as User
    const page = await users.list(as(admin), 1, undefined, `  ${user.email.toUpperCase()} `)
    t.same(page, { data: [user], next_cursor: null })
  })

  t.test('gives an empty page for an address no one has', async (t) => {
    const { users, admin } = await setup(1)
    t.same(await users.list(as(admin), 20, undefined, 'nobody@example.com'), { data: [], next_cursor: null })
  })

  t.test('refuses a malformed address', async (t) => {
    const { users, admin } = await setup(0)
    await t.rejects(users.list(as(admin), 20, undefined, 'not-an-email'), an(InvalidEmailError))
  })

  t.test('is for admins only: a user cannot probe whether an address has an account', async (t) => {
    const { users, created } = await setup(1)
    const user = created[1] as User
    await t.rejects(users.list(as(user), 20, undefined, user.email), an(ForbiddenError))
    await t.rejects(users.list(as(user), 20, undefined, 'not-an-email'), an(ForbiddenError), 'refused before the address is even checked')
  })
})

t.test('exportAll', async (t) => {
  t.test('yields every user once, newest first, in keyset batches of the size asked', async (t) => {
    const { users, admin, created, listCalls } = await setup(6)
    const batches = await collect(users.exportAll(as(admin), { batchSize: 3 }))
    t.same(batches.map((b) => b.length), [3, 3, 1])
    t.same(batches.flat().map((u) => u.id), created.map((u) => u.id).reverse(), 'each user once, newest first')
    t.notOk(batches.flat().some((u) => 'password_hash' in u), 'no password hashes')
    t.same(listCalls.map((c) => c.limit), [3, 3, 3])
    t.equal(listCalls[0]?.after, undefined, 'the first batch starts at the top')
    t.same(listCalls[1]?.after?.id, batches[0]?.[2]?.id, 'each next batch starts after the last row of the one before')
    t.same(listCalls[2]?.after?.id, batches[1]?.[2]?.id)
  })

  t.test('an exactly full last batch ends without reading an empty one', async (t) => {
    const { users, admin, listCalls } = await setup(5)
    const batches = await collect(users.exportAll(as(admin), { batchSize: 3 }))
    t.same(batches.map((b) => b.length), [3, 3])
    t.equal(listCalls.length, 2)
  })

  t.test('uses batches of EXPORT_BATCH_SIZE by default', async (t) => {
    const { users, admin, listCalls } = await setup(2)
    const batches = await collect(users.exportAll(as(admin)))
    t.same(batches.map((b) => b.length), [3])
    t.same(listCalls.map((c) => c.limit), [EXPORT_BATCH_SIZE])
  })

  t.test('yields nothing when there is no one to export', async (t) => {
    const repo = new FakeUserRepository()
    const users = createUserService(repo, new FakePasswordHasher())
    t.same(await collect(users.exportAll({ id: MISSING_ID, role: 'admin' })), [])
  })

  t.test('reads no further batch once its signal aborts', async (t) => {
    const { users, admin, listCalls } = await setup(9)
    const stop = new AbortController()
    const seen: PublicUserRecord[][] = []
    for await (const batch of users.exportAll(as(admin), { batchSize: 2, signal: stop.signal })) {
      seen.push(batch)
      if (seen.length === 2) stop.abort()
    }
    t.equal(seen.length, 2, 'the loop ends by itself after the abort')
    t.equal(listCalls.length, 2, 'no query after the abort')
  })

  t.test('a consumer that stops early stops the reads too', async (t) => {
    const { users, admin, listCalls } = await setup(9)
    const batches = users.exportAll(as(admin), { batchSize: 2 })
    t.equal((await batches.next()).value?.length, 2)
    // What `break` in a for-await loop, or a destroyed stream, does to the generator.
    await batches.return()
    t.same(await batches.next(), { done: true, value: undefined })
    t.equal(listCalls.length, 1)
  })

  t.test('refuses a non-admin when called, before reading anything', async (t) => {
    const { users, created, listCalls } = await setup(1)
    t.throws(() => users.exportAll(as(created[1] as User)), an(ForbiddenError))
    t.equal(listCalls.length, 0)
  })
})
