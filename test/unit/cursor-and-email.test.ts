import t from 'tap'
import { decodeCursor, encodeCursor } from '../../services/cursor.js'
import { normalizeEmail } from '../../services/email.js'
import { InvalidCursorError, InvalidEmailError } from '../../services/errors.js'
import { an } from '../fakes.js'

const POSITION = { createdAt: '2024-05-06T07:08:09.123456Z', id: '01890a5d-ac96-774b-bcce-b302099a8057' }

/** A cursor holding any JSON value, encoded the way encodeCursor encodes. */
const cursorOf = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

t.test('cursors', async (t) => {
  t.test('round-trip a keyset position exactly, microseconds included', async (t) => {
    t.same(decodeCursor(encodeCursor(POSITION)), POSITION)
  })

  t.test('are unpadded URL-safe base64', async (t) => {
    const position = { createdAt: '2024-05-06T07:08:09.999999Z', id: 'ffffffff-ffff-7fff-bfff-ffffffffffff' }
    t.match(Buffer.from(JSON.stringify([position.createdAt, position.id])).toString('base64'), /=$/, 'plain base64 would pad this one')
    t.match(encodeCursor(position), /^[A-Za-z0-9_-]+$/)
  })

  t.test('accept the first and last times PostgreSQL and JavaScript share, and a leap day', async (t) => {
    for (const createdAt of ['0001-01-01T00:00:00.000000Z', '9999-12-31T23:59:59.999999Z', '2024-02-29T12:00:00.000000Z']) {
      t.same(decodeCursor(encodeCursor({ createdAt, id: POSITION.id })), { createdAt, id: POSITION.id })
    }
  })

  t.test('accept an upper-case id', async (t) => {
    const upper = { ...POSITION, id: POSITION.id.toUpperCase() }
    t.same(decodeCursor(encodeCursor(upper)), upper)
  })

  const rejected: Array<[string, string]> = [
    ['text that is not base64 of JSON', 'not-a-cursor'],
    ['an empty cursor', ''],
    ['JSON that is not an array', cursorOf({ createdAt: POSITION.createdAt, id: POSITION.id })],
    ['JSON null', cursorOf(null)],
    ['an array of one', cursorOf([POSITION.createdAt])],
    ['an array of three', cursorOf([POSITION.createdAt, POSITION.id, 'extra'])],
    ['a numeric timestamp', cursorOf([Date.parse('2024-05-06T07:08:09.123Z'), POSITION.id])],
    ['a timestamp with milliseconds only', cursorOf(['2024-05-06T07:08:09.123Z', POSITION.id])],
    ['a timestamp with an offset instead of Z', cursorOf(['2024-05-06T07:08:09.123456+00:00', POSITION.id])],
    ['a timestamp with trailing text', cursorOf([`${POSITION.createdAt}x`, POSITION.id])],
    ['a numeric id', cursorOf([POSITION.createdAt, 42])],
    ['an id that is not a UUID', cursorOf([POSITION.createdAt, 'user-42'])],
    ['a UUID without dashes', cursorOf([POSITION.createdAt, POSITION.id.replaceAll('-', '')])],
    ['the fields in the wrong order', cursorOf([POSITION.id, POSITION.createdAt])],
    // Found by the fuzzer (test/integration/fuzz.test.ts): the right shape, but no such time; PostgreSQL refused them (a 500).
    ['a timestamp with all zeros', cursorOf(['0000-00-00T00:00:00.000000Z', POSITION.id])],
    ['a timestamp in month 13', cursorOf(['2024-13-01T00:00:00.000000Z', POSITION.id])],
    ['a timestamp on February 30', cursorOf(['2024-02-30T00:00:00.000000Z', POSITION.id])],
    ['a timestamp at hour 24', cursorOf(['2024-01-01T24:00:00.000000Z', POSITION.id])],
    ['a timestamp in year 0', cursorOf(['0000-01-01T00:00:00.000000Z', POSITION.id])]
  ]
  for (const [what, cursor] of rejected) {
    t.test(`reject ${what}`, async (t) => {
      t.throws(() => decodeCursor(cursor), an(InvalidCursorError))
    })
  }
})

t.test('normalizeEmail', async (t) => {
  // The longest address allowed: a 64-character local part and a 189-character domain, 254 in all.
  const local64 = 'a'.repeat(64)
  const domain189 = `${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`

  t.test('trims and lower-cases a valid address', async (t) => {
    t.equal(normalizeEmail('  Jane.Doe+Tag@Mail.Example.CO.UK\n'), 'jane.doe+tag@mail.example.co.uk')
  })

  t.test('accepts the special characters the HTML grammar allows in the local part', async (t) => {
    t.equal(normalizeEmail("o'brien!#$%&*/=?^_`{|}~-@example.com"), "o'brien!#$%&*/=?^_`{|}~-@example.com")
  })

  t.test('accepts an address of exactly 254 characters with a 64-character local part', async (t) => {
    const email = `${local64}@${domain189}`
    t.equal(email.length, 254)
    t.equal(normalizeEmail(email), email)
  })

  const rejected: Array<[string, string]> = [
    ['an address over 254 characters', `${local64}@${domain189}e`],
    ['a local part over 64 characters', `${'a'.repeat(65)}@example.com`],
    ['a space inside', 'jane doe@example.com'],
    ['no @', 'jane.example.com'],
    ['two @', 'jane@doe@example.com'],
    ['no dot in the domain', 'jane@localhost'],
    ['an empty local part', '@example.com'],
    ['a domain label starting with a hyphen', 'jane@-example.com'],
    ['a domain ending in a dot', 'jane@example.com.'],
    ['an empty string', ''],
    ['only whitespace', '   ']
  ]
  for (const [what, email] of rejected) {
    t.test(`rejects ${what}`, async (t) => {
      t.throws(() => normalizeEmail(email), an(InvalidEmailError))
    })
  }
})
