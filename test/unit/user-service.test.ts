import t from 'tap'
import {
  CurrentPasswordRequiredError, DatabaseUnavailableError, EmailAlreadyExistsError, ForbiddenError, HashingError,
  InvalidCredentialsError, InvalidCurrentPasswordError, InvalidCursorError, InvalidEmailError, NotFoundError,
  UnauthorizedError, UsernameAlreadyExistsError
} from '../../services/errors.js'
import type { UserRepository } from '../../services/ports.js'
import { createUserService, type Actor, type NewUser, type User } from '../../services/user-service.js'
import { an, FakePasswordHasher, FakeUserRepository, type FakeUserRepositoryOptions } from '../fakes.js'

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const MISSING_ID = '01890000-0000-7000-8000-000000000000'

function setup (options: FakeUserRepositoryOptions = {}) {
  const repo = new FakeUserRepository(options)
  const hasher = new FakePasswordHasher()
  return { repo, hasher, users: createUserService(repo, hasher) }
}

/** A repository that behaves like `repo` except for the methods given. */
function overriding (repo: FakeUserRepository, override: Partial<UserRepository>): UserRepository {
  return {
    create: async (user) => await repo.create(user),
    findById: async (id) => await repo.findById(id),
    findByEmail: async (email) => await repo.findByEmail(email),
    update: async (id, patch) => await repo.update(id, patch),
    delete: async (id) => await repo.delete(id),
    list: async (limit, after) => await repo.list(limit, after),
    listPublic: async (limit, after) => await repo.listPublic(limit, after),
    findByIds: async (ids) => await repo.findByIds(ids),
    ...override
  }
}

const as = (user: User): Actor => ({ id: user.id, role: user.role })

let counter = 0
function fields (over: Partial<NewUser> = {}): NewUser {
  counter++
  return { email: `user${counter}@example.com`, username: `user${counter}`, password: `password-${counter}`, ...over }
}

t.test('create', async (t) => {
  t.test('stores a plain user with a trimmed, lower-cased email and returns it without the hash', async (t) => {
    const { repo, users } = setup()
    const user = await users.create({ email: '  Alice@Example.COM ', username: 'Alice', password: 'alice-password' })
    t.match(user, { email: 'alice@example.com', username: 'Alice', role: 'user' })
    t.match(user.id, UUID_V7, 'a UUIDv7 id')
    t.type(user.created_at, Date)
    t.type(user.updated_at, Date)
    t.same(Object.keys(user).sort(), ['created_at', 'email', 'id', 'role', 'updated_at', 'username'])
    t.notOk('password_hash' in user, 'no password_hash in the result')
    t.equal(repo.row(user.id)?.password_hash, 'fake$alice-password', 'the stored hash is the hasher\'s')
  })

  t.test('makes an admin when asked for that role', async (t) => {
    const { users } = setup()
    const admin = await users.create(fields(), 'admin')
    t.equal(admin.role, 'admin')
  })

  t.test('rejects an invalid email before hashing or storing anything', async (t) => {
    const { repo, hasher, users } = setup()
    await t.rejects(users.create(fields({ email: 'not-an-email' })), an(InvalidEmailError))
    t.equal(repo.size, 0)
    t.same(hasher.hashed, [])
  })

  t.test('rejects an email already taken, whatever its case or surrounding whitespace', async (t) => {
    const { repo, users } = setup()
    await users.create(fields({ email: 'bob@example.com' }))
    await t.rejects(users.create(fields({ email: 'bob@example.com' })), an(EmailAlreadyExistsError))
    await t.rejects(users.create(fields({ email: ' BOB@Example.com\t' })), an(EmailAlreadyExistsError))
    t.equal(repo.size, 1)
  })

  t.test('rejects a username that differs from a taken one only in case', async (t) => {
    const { repo, users } = setup()
    await users.create(fields({ username: 'Carol' }))
    await t.rejects(users.create(fields({ username: 'cAROL' })), an(UsernameAlreadyExistsError))
    t.equal(repo.size, 1)
  })
})

t.test('authenticate', async (t) => {
  t.test('returns the user for the right email and password', async (t) => {
    const { users } = setup()
    const input = fields()
    const created = await users.create(input)
    const user = await users.authenticate(input.email, input.password)
    t.same(user, created)
    t.notOk('password_hash' in user)
  })

  t.test('normalises the email it is given', async (t) => {
    const { users } = setup()
    const input = fields({ email: 'dave@example.com' })
    const created = await users.create(input)
    t.equal((await users.authenticate('  DAVE@example.COM ', input.password)).id, created.id)
  })

  t.test('rejects a wrong password, checking it against the stored hash only', async (t) => {
    const { hasher, users } = setup()
    const input = fields()
    await users.create(input)
    const hashedBefore = hasher.hashed.length
    await t.rejects(users.authenticate(input.email, 'wrong-password'), an(InvalidCredentialsError))
    t.same(hasher.verified, [{ hash: `fake$${input.password}`, password: 'wrong-password' }])
    t.equal(hasher.hashed.length, hashedBefore, 'no dummy hash is made')
  })

  t.test('rejects an unknown email after one verify against a dummy hash, made once', async (t) => {
    const { hasher, users } = setup()
    await t.rejects(users.authenticate('nobody@example.com', 'some-password'), an(InvalidCredentialsError))
    t.equal(hasher.hashed.length, 1, 'one dummy hash made')
    t.match(hasher.hashed[0], /^[0-9a-f]{32}$/, 'of a random secret')
    t.same(hasher.verified, [{ hash: `fake$${String(hasher.hashed[0])}`, password: 'some-password' }])

    await t.rejects(users.authenticate('someone-else@example.com', 'other-password'), an(InvalidCredentialsError))
    t.equal(hasher.hashed.length, 1, 'the dummy hash is reused')
    t.equal(hasher.verified.length, 2)
    t.equal(hasher.verified[1]?.hash, hasher.verified[0]?.hash)
  })

  t.test('a failure making the dummy hash is not remembered: the next login tries again', async (t) => {
    const { hasher, users } = setup()
    hasher.failWith = new HashingError()
    await t.rejects(users.authenticate('nobody@example.com', 'some-password'), an(HashingError))
    hasher.failWith = undefined
    await t.rejects(users.authenticate('nobody@example.com', 'some-password'), an(InvalidCredentialsError))
  })

  t.test('rejects a malformed email as bad credentials, after a verify against the dummy hash', async (t) => {
    const { hasher, users } = setup()
    await t.rejects(users.authenticate('not an email', 'some-password'), an(InvalidCredentialsError))
    t.equal(hasher.verified.length, 1)
    t.equal(hasher.verified[0]?.hash, `fake$${String(hasher.hashed[0])}`)
  })
})

t.test('me', async (t) => {
  t.test('returns the account behind the actor', async (t) => {
    const { users } = setup()
    const user = await users.create(fields())
    t.same(await users.me(as(user)), user)
  })

  t.test('refuses an actor whose account was deleted', async (t) => {
    const { users } = setup()
    const user = await users.create(fields())
    await users.delete(as(user), user.id)
    await t.rejects(users.me(as(user)), an(UnauthorizedError))
  })
})

t.test('get', async (t) => {
  t.test('lets a user read their own account', async (t) => {
    const { users } = setup()
    const user = await users.create(fields())
    t.same(await users.get(as(user), user.id), user)
  })

  t.test('lets an admin read any account', async (t) => {
    const { users } = setup()
    const admin = await users.create(fields(), 'admin')
    const user = await users.create(fields())
    t.same(await users.get(as(admin), user.id), user)
  })

  t.test('forbids a user reading another account', async (t) => {
    const { users } = setup()
    const user = await users.create(fields())
    const other = await users.create(fields())
    await t.rejects(users.get(as(user), other.id), an(ForbiddenError))
  })

  t.test('forbids a user asking for a missing account, so existence does not leak', async (t) => {
    const { users } = setup()
    const user = await users.create(fields())
    await t.rejects(users.get(as(user), MISSING_ID), an(ForbiddenError))
  })

  t.test('reports a missing account to an admin as not found', async (t) => {
    const { users } = setup()
    const admin = await users.create(fields(), 'admin')
    await t.rejects(users.get(as(admin), MISSING_ID), an(NotFoundError))
  })
})

t.test('list', async (t) => {
  // Two users per millisecond, so the id has to break ties in the order, across page boundaries too.
  function steppedClock () {
    let calls = 0
    return () => new Date(Date.UTC(2024, 0, 1) + Math.floor(calls++ / 2))
  }

  t.test('is for admins only', async (t) => {
    const { users } = setup()
    const user = await users.create(fields())
    await t.rejects(users.list(as(user), 10, undefined), an(ForbiddenError))
  })

  t.test('pages through every user exactly once, newest first, with a cursor until the last page', async (t) => {
    const { users } = setup({ now: steppedClock() })
    const admin = await users.create(fields(), 'admin')
    const created = [admin]
    for (let i = 0; i < 6; i++) created.push(await users.create(fields()))

    const pages: User[][] = []
    const cursors: Array<string | null> = []
    let cursor: string | undefined
    do {
      const page = await users.list(as(admin), 3, cursor)
      pages.push(page.data)
      cursors.push(page.next_cursor)
      cursor = page.next_cursor ?? undefined
    } while (cursor !== undefined && pages.length < 10)

    t.same(pages.map((p) => p.length), [3, 3, 1], 'pages of the limit, then the rest')
    t.type(cursors[0], 'string')
    t.type(cursors[1], 'string')
    t.equal(cursors[2], null, 'no cursor on the last page')
    t.same(pages.flat().map((u) => u.id), created.map((u) => u.id).reverse(), 'each user once, newest first')
    t.notOk(pages.flat().some((u) => 'password_hash' in u), 'no password hashes')
  })

  t.test('gives no cursor when the last page is exactly full', async (t) => {
    const { users } = setup({ now: steppedClock() })
    const admin = await users.create(fields(), 'admin')
    await users.create(fields())
    const first = await users.list(as(admin), 1, undefined)
    t.type(first.next_cursor, 'string')
    const second = await users.list(as(admin), 1, first.next_cursor ?? undefined)
    t.equal(second.data.length, 1)
    t.equal(second.next_cursor, null)
  })

  t.test('rejects a cursor it did not issue', async (t) => {
    const { users } = setup()
    const admin = await users.create(fields(), 'admin')
    await t.rejects(users.list(as(admin), 10, 'bm90LWEtY3Vyc29y'), an(InvalidCursorError))
  })
})

t.test('update', async (t) => {
  t.test('refuses a user changing their own email without current_password', async (t) => {
    const { repo, users } = setup()
    const user = await users.create(fields())
    await t.rejects(users.update(as(user), user.id, { email: 'new@example.com' }), an(CurrentPasswordRequiredError))
    t.equal(repo.row(user.id)?.email, user.email, 'unchanged')
  })

  t.test('refuses a user changing their own password without current_password', async (t) => {
    const { repo, users } = setup()
    const input = fields()
    const user = await users.create(input)
    await t.rejects(users.update(as(user), user.id, { password: 'new-password' }), an(CurrentPasswordRequiredError))
    t.equal(repo.row(user.id)?.password_hash, `fake$${input.password}`, 'unchanged')
  })

  t.test('refuses a wrong current_password', async (t) => {
    const { repo, users } = setup()
    const input = fields()
    const user = await users.create(input)
    const change = users.update(as(user), user.id, { password: 'new-password', current_password: 'wrong-password' })
    await t.rejects(change, an(InvalidCurrentPasswordError))
    t.equal(repo.row(user.id)?.password_hash, `fake$${input.password}`, 'unchanged')
  })

  t.test('with the right current_password changes email and password', async (t) => {
    const { repo, users } = setup()
    const input = fields()
    const user = await users.create(input)
    const updated = await users.update(as(user), user.id, {
      email: ' Renamed@Example.com ', password: 'brand-new-password', current_password: input.password
    })
    t.equal(updated.email, 'renamed@example.com', 'the new email is normalised')
    t.equal(repo.row(user.id)?.password_hash, 'fake$brand-new-password', 'the password hash changed')
    t.notOk('password_hash' in updated)
    t.equal((await users.authenticate('renamed@example.com', 'brand-new-password')).id, user.id)
    await t.rejects(users.authenticate('renamed@example.com', input.password), an(InvalidCredentialsError))
  })

  t.test('lets a user change their own username without current_password', async (t) => {
    const { users } = setup()
    const user = await users.create(fields())
    const updated = await users.update(as(user), user.id, { username: 'fresh-name' })
    t.equal(updated.username, 'fresh-name')
  })

  t.test('rejects a username another user has, in any case', async (t) => {
    const { users } = setup()
    const user = await users.create(fields())
    await users.create(fields({ username: 'Taken' }))
    await t.rejects(users.update(as(user), user.id, { username: 'TAKEN' }), an(UsernameAlreadyExistsError))
  })

  t.test('rejects an invalid new email', async (t) => {
    const { users } = setup()
    const admin = await users.create(fields(), 'admin')
    const user = await users.create(fields())
    await t.rejects(users.update(as(admin), user.id, { email: 'no-at-sign' }), an(InvalidEmailError))
  })

  t.test('forbids a non-admin setting a role, even their own', async (t) => {
    const { repo, users } = setup()
    const user = await users.create(fields())
    await t.rejects(users.update(as(user), user.id, { role: 'admin' }), an(ForbiddenError))
    t.equal(repo.row(user.id)?.role, 'user')
  })

  t.test('lets an admin set the role of another user', async (t) => {
    const { users } = setup()
    const admin = await users.create(fields(), 'admin')
    const user = await users.create(fields())
    const updated = await users.update(as(admin), user.id, { role: 'admin' })
    t.equal(updated.role, 'admin')
  })

  t.test('lets an admin change another user\'s email and password without current_password', async (t) => {
    const { repo, users } = setup()
    const admin = await users.create(fields(), 'admin')
    const user = await users.create(fields())
    const updated = await users.update(as(admin), user.id, { email: 'Moved@example.com', password: 'reset-password' })
    t.equal(updated.email, 'moved@example.com')
    t.equal(repo.row(user.id)?.password_hash, 'fake$reset-password')
  })

  t.test('still asks an admin for current_password to change their own email', async (t) => {
    const { users } = setup()
    const admin = await users.create(fields(), 'admin')
    await t.rejects(users.update(as(admin), admin.id, { email: 'boss@example.com' }), an(CurrentPasswordRequiredError))
  })

  t.test('forbids a user updating another account', async (t) => {
    const { users } = setup()
    const user = await users.create(fields())
    const other = await users.create(fields())
    await t.rejects(users.update(as(user), other.id, { username: 'hijacked' }), an(ForbiddenError))
  })

  t.test('reports a missing account to an admin as not found', async (t) => {
    const { users } = setup()
    const admin = await users.create(fields(), 'admin')
    await t.rejects(users.update(as(admin), MISSING_ID, { username: 'ghost' }), an(NotFoundError))
  })

  t.test('reports an account deleted while it was being updated as not found', async (t) => {
    const repo = new FakeUserRepository()
    const racing = overriding(repo, {
      update: async (id, patch) => {
        await repo.delete(id)
        return await repo.update(id, patch)
      }
    })
    const users = createUserService(racing, new FakePasswordHasher())
    const user = await users.create(fields())
    await t.rejects(users.update(as(user), user.id, { username: 'too-late' }), an(NotFoundError))
  })

  t.test('moves updated_at and leaves created_at alone', async (t) => {
    const past = new Date('2020-01-01T00:00:00.000Z')
    const { users } = setup({ now: () => past })
    const user = await users.create(fields())
    t.same(user.updated_at, past)
    const before = Date.now()
    const updated = await users.update(as(user), user.id, { username: 'later-name' })
    t.ok(updated.updated_at.getTime() >= before, 'updated_at is now')
    t.same(updated.created_at, past, 'created_at unchanged')
  })
})

t.test('delete', async (t) => {
  t.test('lets a user delete their own account', async (t) => {
    const { repo, users } = setup()
    const user = await users.create(fields())
    await users.delete(as(user), user.id)
    t.equal(repo.row(user.id), undefined)
  })

  t.test('lets an admin delete another account', async (t) => {
    const { repo, users } = setup()
    const admin = await users.create(fields(), 'admin')
    const user = await users.create(fields())
    await users.delete(as(admin), user.id)
    t.equal(repo.row(user.id), undefined)
    t.equal(repo.size, 1)
  })

  t.test('forbids a user deleting another account', async (t) => {
    const { repo, users } = setup()
    const user = await users.create(fields())
    const other = await users.create(fields())
    await t.rejects(users.delete(as(user), other.id), an(ForbiddenError))
    t.ok(repo.row(other.id), 'still there')
  })

  t.test('reports a missing account as not found', async (t) => {
    const { users } = setup()
    const admin = await users.create(fields(), 'admin')
    await t.rejects(users.delete(as(admin), MISSING_ID), an(NotFoundError))
  })
})

t.test('ensureAdmin', async (t) => {
  t.test('creates the admin with username admin, then reports that it exists', async (t) => {
    const { repo, users } = setup()
    t.equal(await users.ensureAdmin(' Root@Example.com ', 'root-password'), 'created')
    const admin = await users.authenticate('root@example.com', 'root-password')
    t.match(admin, { email: 'root@example.com', username: 'admin', role: 'admin' })

    t.equal(await users.ensureAdmin('root@example.com', 'root-password'), 'exists')
    t.equal(await users.ensureAdmin('ROOT@example.com', 'another-password'), 'exists', 'matched after normalising')
    t.equal(repo.size, 1)
    t.equal(repo.row(admin.id)?.password_hash, 'fake$root-password', 'an existing admin\'s password is left alone')
  })

  t.test('creates the admin under another username when admin is taken', async (t) => {
    const { repo, users } = setup()
    await users.create(fields({ username: 'Admin' }))
    t.equal(await users.ensureAdmin('root@example.com', 'root-password'), 'created')
    const admin = await users.authenticate('root@example.com', 'root-password')
    t.equal(admin.role, 'admin')
    t.match(admin.username, /^admin-[0-9a-f]{8}$/)
    t.equal(repo.size, 2)
  })

  t.test('reports exists when another replica creates the admin first', async (t) => {
    const repo = new FakeUserRepository()
    const hasher = new FakePasswordHasher()
    await createUserService(repo, hasher).ensureAdmin('root@example.com', 'root-password')
    // This replica looked before the other one had inserted.
    const users = createUserService(overriding(repo, { findByEmail: async () => undefined }), hasher)
    t.equal(await users.ensureAdmin('root@example.com', 'root-password'), 'exists')
    t.equal(repo.size, 1)
  })

  t.test('reports exists when another replica wins the email while admin was taken', async (t) => {
    const repo = new FakeUserRepository()
    const hasher = new FakePasswordHasher()
    const users = createUserService(repo, hasher)
    await users.create(fields({ username: 'admin' }))
    // The other replica inserts the admin between this one's look-up and its second attempt.
    let attempts = 0
    const racing = overriding(repo, {
      findByEmail: async () => undefined,
      create: async (row) => {
        attempts++
        if (attempts === 2) await createUserService(repo, hasher).create({ email: 'root@example.com', username: 'root2', password: 'x-password' }, 'admin')
        return await repo.create(row)
      }
    })
    t.equal(await createUserService(racing, hasher).ensureAdmin('root@example.com', 'root-password'), 'exists')
    t.equal(attempts, 2)
  })

  t.test('lets a database failure on the second attempt propagate', async (t) => {
    const repo = new FakeUserRepository()
    const hasher = new FakePasswordHasher()
    await createUserService(repo, hasher).create(fields({ username: 'admin' }))
    let attempts = 0
    const failing = overriding(repo, {
      create: async (row) => {
        if (++attempts === 2) throw new DatabaseUnavailableError()
        return await repo.create(row)
      }
    })
    await t.rejects(createUserService(failing, hasher).ensureAdmin('root@example.com', 'root-password'), an(DatabaseUnavailableError))
  })

  t.test('lets a hashing failure propagate', async (t) => {
    const { repo, hasher, users } = setup()
    hasher.failWith = new HashingError()
    await t.rejects(users.ensureAdmin('root@example.com', 'root-password'), an(HashingError))
    t.equal(repo.size, 0)
  })

  t.test('lets a database failure propagate', async (t) => {
    const repo = new FakeUserRepository()
    const down = overriding(repo, { create: async () => { throw new DatabaseUnavailableError() } })
    const users = createUserService(down, new FakePasswordHasher())
    await t.rejects(users.ensureAdmin('root@example.com', 'root-password'), an(DatabaseUnavailableError))
  })
})
