/**
 * Hostile requests generated from the service's own OpenAPI document, with fast-check.
 *
 * operationsOf() reads every operation (path and query parameters, the JSON request body) and
 * refuses what it does not understand (another parameter location, another body media type, a
 * schema keyword it cannot generate), so an operation added later that the fuzzer cannot handle
 * fails the fuzz test instead of being skipped. requestArbitrary() then makes, for one operation:
 * valid-shaped requests, boundary and random values, wrong types, missing and unknown fields,
 * oversized and unicode-edge strings, malformed JSON, wrong content types, huge numbers, duplicate
 * and prototype-pollution keys written in the raw JSON text (so they really reach the server),
 * bad path parameters and bad query strings. Bodies are the exact bytes to send.
 */
import fc from 'fast-check'
import { createHmac } from 'node:crypto'

export type AuthKind = 'none' | 'user' | 'admin' | 'forged'
export const AUTH_KINDS: readonly AuthKind[] = ['none', 'user', 'admin', 'forged']

export interface FuzzRequest {
  operationId: string
  /** Which generator made it, e.g. body:duplicate-key; counted for the report. */
  kind: string
  auth: AuthKind
  method: string
  /** Path and raw query string, exactly as sent. */
  url: string
  headers: Record<string, string>
  /** Exactly the bytes sent; undefined sends no body. */
  body?: string | Buffer
}

// ---------------------------------------------------------------------------------------------
// Reading the document

export interface Schema {
  [keyword: string]: unknown
  type?: string
  properties?: Record<string, Schema>
  required?: string[]
  items?: Schema
  enum?: unknown[]
  anyOf?: Schema[]
  $ref?: string
}

interface Parameter { name: string, required: boolean, schema: Schema }

export interface Operation {
  operationId: string
  method: string
  /** The path template, /api/users/{id}. */
  path: string
  pathParams: Parameter[]
  query: Parameter[]
  /** The application/json request body schema, when the operation takes one. */
  body: Schema | undefined
  secured: boolean
}

interface RawParameter { name: string, in: string, required?: boolean, schema: Schema }
interface RawOperation {
  operationId?: string
  parameters?: RawParameter[]
  requestBody?: { required?: boolean, content: Record<string, { schema: Schema }> }
  security?: unknown[]
}
export interface Document {
  paths: Record<string, Record<string, RawOperation>>
  components?: { schemas?: Record<string, Schema> }
}

export class UnsupportedError extends Error {
  override name = 'UnsupportedError'
}

/** What the value generators understand; anything else is an UnsupportedError, not a silent gap. */
const KEYWORDS = new Set([
  'type', 'properties', 'required', 'additionalProperties', 'minProperties', 'minLength', 'maxLength', 'pattern',
  'format', 'minimum', 'maximum', 'default', 'items', 'minItems', 'maxItems', 'uniqueItems', 'enum', 'anyOf', '$ref',
  // Annotations: they constrain nothing.
  'description', 'examples', 'writeOnly', 'readOnly', 'title', '$id'
])
const TYPES = new Set(['object', 'string', 'integer', 'number', 'boolean', 'array', 'null'])
const FORMATS = new Set(['uuid', 'email', 'date-time'])

export function resolve (doc: Document, schema: Schema): Schema {
  if (schema.$ref === undefined) return schema
  const name = /^#\/components\/schemas\/(.+)$/.exec(schema.$ref)?.[1]
  const target = name === undefined ? undefined : doc.components?.schemas?.[name]
  if (target === undefined) throw new UnsupportedError(`unresolvable $ref ${schema.$ref}`)
  return resolve(doc, target)
}

/** Throws UnsupportedError for any schema the generators below could not honour. */
export function assertSupported (doc: Document, schema: Schema, where: string): void {
  const s = resolve(doc, schema)
  for (const keyword of Object.keys(s)) {
    if (!KEYWORDS.has(keyword)) throw new UnsupportedError(`${where}: schema keyword ${keyword} is not supported by the fuzzer`)
  }
  if (s.type !== undefined && !TYPES.has(s.type)) throw new UnsupportedError(`${where}: type ${String(s.type)}`)
  if (s.format !== undefined && !FORMATS.has(String(s.format))) throw new UnsupportedError(`${where}: format ${String(s.format)}`)
  if (s.type === undefined && s.enum === undefined && s.anyOf === undefined) throw new UnsupportedError(`${where}: a schema with no type`)
  if (s.pattern !== undefined) new RegExp(String(s.pattern)) // eslint-disable-line no-new
  for (const [name, property] of Object.entries(s.properties ?? {})) assertSupported(doc, property, `${where}.${name}`)
  if (s.items !== undefined) assertSupported(doc, s.items, `${where}[]`)
  for (const [i, branch] of (s.anyOf ?? []).entries()) assertSupported(doc, branch, `${where}|${i}`)
}

/** Every operation of the document, read for fuzzing; throws UnsupportedError for what it cannot fuzz. */
export function operationsOf (doc: Document): Operation[] {
  const operations: Operation[] = []
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, raw] of Object.entries(methods)) {
      const where = `${method.toUpperCase()} ${path}`
      if (raw.operationId === undefined) throw new UnsupportedError(`${where} has no operationId`)
      const pathParams: Parameter[] = []
      const query: Parameter[] = []
      for (const p of raw.parameters ?? []) {
        assertSupported(doc, p.schema, `${where} ${p.in} ${p.name}`)
        const parameter = { name: p.name, required: p.required === true, schema: resolve(doc, p.schema) }
        if (p.in === 'path') pathParams.push(parameter)
        else if (p.in === 'query') query.push(parameter)
        else throw new UnsupportedError(`${where}: ${p.in} parameters are not supported by the fuzzer`)
      }
      const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1])
      if (templated.join() !== pathParams.map((p) => p.name).join()) throw new UnsupportedError(`${where}: path parameters do not match the template`)
      let body: Schema | undefined
      if (raw.requestBody !== undefined) {
        const types = Object.keys(raw.requestBody.content)
        const json = raw.requestBody.content['application/json']
        if (types.length !== 1 || json === undefined) throw new UnsupportedError(`${where}: request body ${types.join(', ')} is not supported by the fuzzer`)
        assertSupported(doc, json.schema, `${where} body`)
        body = resolve(doc, json.schema)
        if (body.type !== 'object') throw new UnsupportedError(`${where}: only object bodies are supported`)
      }
      operations.push({
        operationId: raw.operationId,
        method: method.toUpperCase(),
        path,
        pathParams,
        query,
        body,
        secured: (raw.security ?? []).length > 0
      })
    }
  }
  return operations
}

// ---------------------------------------------------------------------------------------------
// Context: what the test knows about the running service

export interface FuzzContext {
  doc: Document
  /** Ids of users that exist (at the start), so path parameters and lookups also hit real rows. */
  knownIds: string[]
  /** Known ids never used as a DELETE target (the accounts the fuzz acts as). */
  protectedIds: string[]
  /** Accounts that exist, so logins sometimes succeed and signups sometimes collide. */
  credentials: Array<{ email: string, username: string, password: string }>
  tokens: { user: string, admin: string }
  /** Authorization header values that must not authenticate anyone (see forgedAuthorizations). */
  forged: string[]
  bodyLimit: number
}

// ---------------------------------------------------------------------------------------------
// Tokens

const b64url = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

/** An HS256 JWT, signed with `secret`. */
export function signJwt (claims: Record<string, unknown>, secret: string, header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' }): string {
  const unsigned = `${b64url(header)}.${b64url(claims)}`
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`
}

/**
 * Authorization values that must not authenticate: garbage, other schemes, a token signed with the
 * wrong key, alg "none", an expired or future-dated or wrong-issuer token signed with the right key,
 * and a real token with its claims or signature tampered with.
 */
export function forgedAuthorizations (options: { secret: string, issuer: string, audience: string, userToken: string, userId: string }): string[] {
  const { secret, issuer: iss, audience: aud, userToken, userId } = options
  const now = Math.floor(Date.now() / 1000)
  const claims = { sub: userId, role: 'admin', iat: now, exp: now + 600, iss, aud }
  const [header = '', payload = '', signature = ''] = userToken.split('.')
  const escalated = b64url({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), role: 'admin' })
  return [
    'Bearer garbage',
    'Bearer a.b.c',
    'Bearer',
    'Bearer ',
    `Bearer ${'A'.repeat(4000)}`,
    'Basic dXNlcjpwYXNzd29yZA==',
    `Token ${userToken}`,
    `Bearer ${signJwt(claims, 'a-completely-different-secret-of-32-chars')}`,
    `Bearer ${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`,
    `Bearer ${signJwt(claims, secret, { alg: 'HS512', typ: 'JWT' })}`,
    `Bearer ${signJwt({ ...claims, iat: now - 7200, exp: now - 3600 }, secret)}`,
    `Bearer ${signJwt({ ...claims, iat: now + 3600, exp: now + 7200 }, secret)}`,
    `Bearer ${signJwt({ ...claims, iss: 'evil' }, secret)}`,
    `Bearer ${signJwt({ ...claims, aud: 'someone-else' }, secret)}`,
    `Bearer ${header}.${escalated}.${signature}`,
    `Bearer ${userToken.slice(0, -2)}${userToken.endsWith('A') ? 'BB' : 'AA'}`,
    `Bearer ${userToken}.${signature}`
  ]
}

// ---------------------------------------------------------------------------------------------
// Values

/** JSON number texts JSON.stringify cannot write: the parser must cope with every one. */
export const NUMBER_TEXTS = [
  '0', '-0', '-1', '1', '0.5', '-0.0', '1.0', '2147483647', '2147483648', '-2147483649', '4294967296',
  '9007199254740991', '9007199254740992', '9007199254740993', '-9007199254740993', '1e308', '-1e308', '1.7976931348623157e308',
  '1e309', '-1e309', '1e-400', '5e-324', '1E2', '1e+2', `1${'0'.repeat(400)}`, '1e999999999', `-${'9'.repeat(1000)}`, `0.${'0'.repeat(500)}1`
]
/** Strings a careless parser takes for numbers or special values. */
export const NAN_LIKE = ['NaN', '-NaN', 'Infinity', '-Infinity', 'undefined', 'null', 'true', '0x10', '1e3', ' 1', '1 ', '+1', '١٢', '', '-', '.', '0b1', '1_000']
/** Values of every JSON type, for wrong-type fields. */
export const WRONG_TYPES = ['null', 'true', 'false', '0', '1', '-1', '""', '"x"', '[]', '[1,2]', '["a"]', '{}', '{"a":1}', '[[[]]]', '[null]']
/** Unicode edges; JSON.stringify writes lone surrogates as raw \udXXX escapes, which is what we want sent. */
export const UNICODE = [
  '\ud800', '\udfff', 'a\ud800b', '\udc00\ud800', 'x\u0000y', '\u0000', '\u202eevil', 'adm\u200fin', '\ufeffbom', '\u200b',
  '👩‍👩‍👧‍👦', '🏳️‍🌈', `e${'\u0301'.repeat(200)}`, `Z${'\u0336\u0337\u0338'.repeat(60)}`, 'ＡＤＭＩＮ', 'аdmin', 'İı', 'ß', 'ﬁ',
  '\uffff', '\ufffe', '\u{10ffff}', '\r\n', '\t', '\\', '"', '\u2028\u2029', '%00', ['$', '{7*7}'].join(''), '<script>', "' or 1=1--"
]
const EMAILISH = (local: string): string => `${local}@example.com`
/** Bytes that are not valid UTF-8: overlong forms, a lone continuation byte, encoded surrogates, truncations. */
export const BAD_UTF8 = [
  [0xc0, 0xaf], [0xc0, 0x80], [0xe0, 0x80, 0xaf], [0xf0, 0x80, 0x80, 0xaf], [0xff], [0xfe], [0x80], [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0xc3]
].map((bytes) => Buffer.from(bytes))

/** Malformed JSON texts (the valid body, truncated, is added per operation). */
export const MALFORMED = [
  '', ' ', '{', '}', '[', '{"a":}', '{"a":1,}', '{,}', "{'a':1}", '{a:1}', '{"a":1', '{"a" 1}', '{"a":01}', '{"a":.5}',
  '{"a":NaN}', '{"a":Infinity}', '{"a":undefined}', '{"a":"\\x41"}', '{"a":"\\u12"}', '{"a":"\u0001"}', '{"a":"line\nbreak"}',
  '{"a":1}//', '/*c*/{}', '{"a":1}{"b":2}', '{"a":1} x', '\ufeff{}', 'nul', 'tru', '"unterminated', '{"a":-}', '{"a":1e}',
  `${'['.repeat(5000)}${']'.repeat(5000)}`, `${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}`, `${'['.repeat(100_000)}`
]
export const TOP_LEVEL = ['null', '[]', '[{}]', '0', '1e308', '"x"', 'true', 'false', '""', '"{}"']
const PROTO_ENTRIES: Array<[string, string]> = [
  ['__proto__', '{"polluted":1}'],
  ['constructor', '{"prototype":{"polluted":1}}'],
  ['prototype', '{"polluted":1}'],
  ['__proto__', '{"__proto__":{"polluted":1}}'],
  ['__proto__', 'null'],
  ['constructor', '{"polluted":1}'],
  ['\\u005f_proto__', '{"polluted":1}']
]
export const CONTENT_TYPES = [
  'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=fuzz', 'application/octet-stream',
  'application/xml', 'application/json; charset=utf-16', 'application/json; charset=latin1', 'Application/JSON',
  'application/json;charset=UTF-8', 'application/json-patch+json', 'application/problem+json', 'application/jsonx',
  'application/json, text/plain', 'text/json', '*/*', 'application/', 'json', ';', 'application/json; boundary=x; charset=utf-8'
]

/** Valid-looking values for properties, by name: the schema says "string", the service wants an email. */
function hints (ctx: FuzzContext): Record<string, fc.Arbitrary<unknown>> {
  const known = ctx.credentials
  const pick = <K extends 'email' | 'username' | 'password'>(k: K): fc.Arbitrary<string> => fc.constantFrom(...known.map((c) => c[k]))
  return {
    email: fc.oneof(fc.emailAddress().filter((e) => e.length <= 254), pick('email'), pick('email').map((e) => ` ${e.toUpperCase()} `)),
    username: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_.-]{3,32}$/), pick('username')),
    password: fc.oneof(fc.string({ minLength: 8, maxLength: 40 }), pick('password')),
    current_password: pick('password'),
    refresh_token: fc.oneof(fc.base64String({ minLength: 40, maxLength: 48 }), fc.stringMatching(/^[A-Za-z0-9_-]{43}$/)),
    ids: fc.uniqueArray(fc.oneof(fc.constantFrom(...ctx.knownIds), fc.uuid()), { minLength: 1, maxLength: 20 })
  }
}

/** Values the schema accepts. */
export function valid (ctx: FuzzContext, schema: Schema): fc.Arbitrary<unknown> {
  const s = resolve(ctx.doc, schema)
  if (s.enum !== undefined) return fc.constantFrom(...s.enum)
  if (s.anyOf !== undefined) return fc.oneof(...s.anyOf.map((branch) => valid(ctx, branch)))
  const min = typeof s.minLength === 'number' ? s.minLength : 0
  const max = typeof s.maxLength === 'number' ? s.maxLength : 64
  switch (s.type) {
    case 'string': {
      if (s.format === 'uuid') return fc.oneof(fc.uuid(), fc.uuid().map((u) => u.toUpperCase()), ...ctx.knownIds.length > 0 ? [fc.constantFrom(...ctx.knownIds)] : [])
      if (s.pattern !== undefined) return fc.stringMatching(new RegExp(String(s.pattern))).filter((v) => v.length >= min && v.length <= max)
      return fc.string({ minLength: min, maxLength: Math.max(min, Math.min(max, 64)), unit: 'grapheme' })
        .filter((v) => v.length >= min && v.length <= max)
    }
    case 'integer':
      return fc.integer({ min: typeof s.minimum === 'number' ? s.minimum : -1e6, max: typeof s.maximum === 'number' ? s.maximum : 1e6 })
    case 'number':
      return fc.double({ noNaN: true, noDefaultInfinity: true, ...(typeof s.minimum === 'number' && { min: s.minimum }), ...(typeof s.maximum === 'number' && { max: s.maximum }) })
    case 'boolean': return fc.boolean()
    case 'null': return fc.constant(null)
    case 'array': {
      const item = valid(ctx, s.items ?? { type: 'string' })
      const constraints = { minLength: Number(s.minItems ?? 0), maxLength: Math.min(Number(s.maxItems ?? 10), 10) }
      return s.uniqueItems === true ? fc.uniqueArray(item, constraints) : fc.array(item, constraints)
    }
    default: return validObject(ctx, s).map((entries) => Object.fromEntries(entries.map(([k, v]) => [k, JSON.parse(v)])))
  }
}

type Entry = [key: string, valueText: string]

/** An object the schema accepts, as [key, JSON text] entries in order; hinted properties get domain values. */
function validObject (ctx: FuzzContext, s: Schema): fc.Arbitrary<Entry[]> {
  const named = hints(ctx)
  const required = new Set(s.required ?? [])
  const parts = Object.entries(s.properties ?? {}).map(([name, property]) => {
    const base = valid(ctx, property)
    const hinted = named[name]
    const value = (hinted === undefined ? base : fc.oneof({ arbitrary: hinted, weight: 3 }, { arbitrary: base, weight: 1 }))
      .filter((v) => JSON.stringify(v) !== undefined)
      .map((v): Entry => [name, JSON.stringify(v)])
    return required.has(name) ? value.map((e) => [e]) : fc.option(value, { nil: undefined }).map((e) => e === undefined ? [] : [e])
  })
  const minProperties = Number(s.minProperties ?? 0)
  return fc.tuple(...parts).map((lists) => lists.flat()).filter((entries) => entries.length >= minProperties)
}

const objectText = (entries: Entry[]): string => `{${entries.map(([k, v]) => `${k.startsWith('\\u') ? `"${k}"` : JSON.stringify(k)}:${v}`).join(',')}}`

/** Values the schema refuses, or that sit on its edges, as JSON text. */
function hostile (ctx: FuzzContext, schema: Schema): fc.Arbitrary<[kind: string, text: string]> {
  const s = resolve(ctx.doc, schema)
  const min = Number(s.minLength ?? 0)
  const max = Number(s.maxLength ?? 64)
  const lengths = [...new Set([min - 1, min, max, max + 1, 0, 1, max * 2])].filter((n) => n >= 0)
  const filler = fc.constantFrom('a', 'A', '9', '_', 'é', '😀', ' ', '\u0000', '\ud800')
  const as = (kind: string, arb: fc.Arbitrary<string>): fc.Arbitrary<[string, string]> => arb.map((text) => [kind, text])
  const str = (arb: fc.Arbitrary<string>): fc.Arbitrary<string> => arb.map((v) => JSON.stringify(v))
  const kinds: Array<fc.Arbitrary<[string, string]>> = [
    as('number', fc.constantFrom(...NUMBER_TEXTS)),
    as('nan-like', str(fc.constantFrom(...NAN_LIKE))),
    as('wrong-type', fc.constantFrom(...WRONG_TYPES)),
    as('unicode', str(fc.oneof(fc.constantFrom(...UNICODE), fc.constantFrom(...UNICODE).map(EMAILISH), fc.string({ unit: 'binary', maxLength: 40 })))),
    as('oversized', str(fc.constantFrom(max + 1, 1000, 10_000, Math.floor(ctx.bodyLimit * 0.9)).map((n) => 'x'.repeat(n)))),
    as('proto', fc.constantFrom(...PROTO_ENTRIES.map(([k, v]) => objectText([[k, v]]))))
  ]
  if (s.type === 'string' || s.type === undefined) {
    kinds.push(as('boundary', str(fc.tuple(fc.constantFrom(...lengths), filler).map(([n, c]) => c.repeat(n)))))
    kinds.push(as('random', str(fc.string({ maxLength: max + 2, unit: 'binary' }))))
  }
  if (s.type === 'integer' || s.type === 'number') {
    const lo = Number(s.minimum ?? 0)
    const hi = Number(s.maximum ?? 0)
    kinds.push(as('boundary', fc.constantFrom(lo - 1, lo, hi, hi + 1, lo + 0.5).map(String)))
  }
  if (s.type === 'array') {
    const items = Number(s.maxItems ?? 10)
    const item = valid(ctx, s.items ?? { type: 'string' })
    kinds.push(as('boundary', fc.constantFrom(0, items, items + 1, items * 3).chain((n) => fc.array(item, { minLength: n, maxLength: n })).map((v) => JSON.stringify(v))))
    kinds.push(as('items', fc.array(hostile(ctx, s.items ?? { type: 'string' }).map(([, text]) => text), { minLength: 1, maxLength: 5 }).map((texts) => `[${texts.join(',')}]`)))
    kinds.push(as('duplicates', item.map((v) => JSON.stringify([v, v]))))
  }
  if (s.enum !== undefined) kinds.push(as('enum', str(fc.constantFrom(...s.enum.map((v) => String(v).toUpperCase()), 'superadmin', 'root', ''))))
  if (s.type === 'object') kinds.push(as('object', validObject(ctx, s).map((entries) => objectText([...entries, ['extra', '1']]))))
  return fc.oneof(...kinds)
}

// ---------------------------------------------------------------------------------------------
// Parameters

/** Path segments (already URL-encoded, or deliberately malformed) that are not plain UUIDs. */
export const BAD_IDS = [
  'not-a-uuid', 'urn:uuid:0190b6c8-0e6b-7cc1-a8f6-2e9f2c4a5b6d', 'urn%3Auuid%3A0190b6c8-0e6b-7cc1-a8f6-2e9f2c4a5b6d',
  '%7B0190b6c8-0e6b-7cc1-a8f6-2e9f2c4a5b6d%7D', '0190b6c80e6b7cc1a8f62e9f2c4a5b6d', '0190b6c8-0e6b-7cc1-a8f6-2e9f2c4a5b6dx',
  '0190b6c8-0e6b-7cc1-a8f6-2e9f2c4a5b6', '%200190b6c8-0e6b-7cc1-a8f6-2e9f2c4a5b6d', '0190b6c8-0e6b-7cc1-a8f6-2e9f2c4a5b6d%00',
  'g190b6c8-0e6b-7cc1-a8f6-2e9f2c4a5b6d', '00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '%00', '..', '%2e%2e', '%2F', '%2Fetc%2Fpasswd', '%', '%zz', '%E0%A4%A', '%C0%AF', '%F0%9F%98%80', '%ED%A0%80', 'null', 'undefined',
  '__proto__', 'constructor', 'prototype', '-1', '0', '1e308', 'NaN', '%27%20or%201%3D1--', 'a'.repeat(37), 'a'.repeat(101),
  'a'.repeat(2000), '0'.repeat(8000), '%20', '%09', '~', '*', '%22%3E%3Cscript%3E'
]

/** One query parameter as [name, raw value] pairs: repeated, bracketed, encoded or not. */
function queryArb (ctx: FuzzContext, op: Operation): fc.Arbitrary<[kind: string, query: string]> {
  const enc = pct
  const validPairs = fc.tuple(...op.query.map((p) => fc.option(valid(ctx, p.schema).map((v) => `${p.name}=${enc(String(v))}`), { nil: undefined })))
    .map((pairs) => pairs.filter((p) => p !== undefined))
  const cursorOf = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  // Digits in the right places that make no date: month 13, day 32, hour 25, year 0, leap days.
  const badTimestamp = fc.tuple(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 99 }))
    .map(([y, mo, d, h, mi, s]) => `${String(y).padStart(4, '0')}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}T${String(h).padStart(2, '0')}:${String(mi).padStart(2, '0')}:${String(s).padStart(2, '0')}.000000Z`)
  const cursors = fc.oneof(
    fc.constantFrom('', '=', 'not-base64!', '%00', 'a'.repeat(513), 'a'.repeat(512), cursorOf([]), cursorOf({}), cursorOf(['x', 'y']),
      cursorOf(['2024-01-01T00:00:00.000000Z', 'not-a-uuid']), cursorOf(['2024-01-01T00:00:00.000000Z', '0190b6c8-0e6b-7cc1-a8f6-2e9f2c4a5b6d', 3]),
      Buffer.from('{"__proto__":{"polluted":1}}').toString('base64url'), Buffer.from('["\ud800"]').toString('base64url'), cursorOf(null), cursorOf(1e308),
      cursorOf(['0000-01-01T00:00:00.000000Z', '0190b6c8-0e6b-7cc1-a8f6-2e9f2c4a5b6d']), cursorOf(['2023-02-29T00:00:00.000000Z', '0190b6c8-0e6b-7cc1-a8f6-2e9f2c4a5b6d']),
      cursorOf(['9999-12-31T23:59:59.999999Z', 'ffffffff-ffff-ffff-ffff-ffffffffffff'])),
    fc.tuple(badTimestamp, fc.uuid()).map(([ts, id]) => cursorOf([ts, id])),
    fc.base64String({ maxLength: 200 }),
    fc.string({ unit: 'binary', maxLength: 60 }).map((s) => Buffer.from(s).toString('base64url'))
  ).map(enc)
  const names = op.query.map((p) => p.name)
  const anyName = fc.constantFrom(...names, 'unknown', '__proto__', 'constructor', 'constructor[prototype][polluted]', '__proto__[polluted]', 'limit[]', 'a.b', '')
  const badValue = fc.oneof(
    fc.constantFrom(...NUMBER_TEXTS.filter((n) => n.length < 50), ...NAN_LIKE).map(enc),
    fc.constantFrom(...UNICODE).map(enc),
    fc.constantFrom('%', '%zz', '%E0%A4%A', '%C0%AF', '%00', '+', '&', '=', '==', '[]', '[0]=1', 'x'.repeat(600), '9'.repeat(400)),
    cursors
  )
  const kinds: Array<fc.Arbitrary<[string, string]>> = [
    fc.tuple(anyName, badValue).map(([n, v]) => ['query:bad-value', `${n}=${v}`]),
    fc.tuple(anyName, fc.array(badValue, { minLength: 2, maxLength: 4 })).map(([n, vs]) => ['query:repeated', vs.map((v) => `${n}=${v}`).join('&')]),
    fc.tuple(anyName, badValue).map(([n, v]) => ['query:array', `${n}[]=${v}&${n}[0]=${v}&${n}[x]=1`]),
    fc.constantFrom('&&&', '?', '=', '==1', 'a', '%', '&=&', `${'a=1&'.repeat(1000)}a=1`, 'limit', 'limit=', 'cursor=', 'email=')
      .map((q): [string, string] => ['query:raw', q])
  ]
  if (names.includes('limit')) kinds.push(fc.constantFrom('0', '-1', '1', '100', '101', '1e308', '1e2', '1.5', '9007199254740993', 'NaN', '', '0x10', '%201').map((v) => ['query:limit', `limit=${v}`]))
  if (names.includes('cursor')) {
    const cursorQuery = fc.tuple(cursors, validPairs).map(([c, pairs]): [string, string] => ['query:cursor', [...pairs.filter((p) => !p.startsWith('cursor=')), `cursor=${c}`].join('&')])
    kinds.push(cursorQuery, cursorQuery)
  }
  return fc.tuple(fc.oneof(...kinds), validPairs).map(([[kind, bad], pairs]) => [kind, [...pairs, bad].join('&')])
}

/** Percent-encodes every byte but the unreserved characters; lone surrogates become U+FFFD, as on any wire. */
export function pct (value: string): string {
  return [...Buffer.from(value)].map((b) => /[A-Za-z0-9\-_.~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('')
}

function pathFor (op: Operation, values: Record<string, string>): string {
  return op.path.replace(/\{([^}]+)\}/g, (_m, name: string) => values[name] ?? '')
}

// ---------------------------------------------------------------------------------------------
// Requests

interface Parts { kind: string, path: Record<string, string>, query: string, headers: Record<string, string>, body?: string | Buffer }

/** Every request kind the fuzzer makes for one operation, each a fast-check arbitrary. */
function partsArbitrary (ctx: FuzzContext, op: Operation): fc.Arbitrary<Parts> {
  const validPath = fc.tuple(...op.pathParams.map((p) => valid(ctx, p.schema).map((v) => [p.name, pct(String(v))] as const)))
    .map((pairs) => Object.fromEntries(pairs))
  const validQuery = fc.tuple(...op.query.map((p) => fc.option(valid(ctx, p.schema).map((v) => `${p.name}=${pct(String(v))}`), { nil: undefined })))
    .map((pairs) => pairs.filter((p) => p !== undefined).join('&'))
  const JSON_TYPE = { 'content-type': 'application/json' }
  // Weighted: hostile field values, bad ids and query strings have the most variety, so they get the most draws.
  const kinds: Array<{ arbitrary: fc.Arbitrary<Parts>, weight: number }> = []
  const add = (weight: number, arbitrary: fc.Arbitrary<Parts>): void => { kinds.push({ arbitrary, weight }) }
  const make = (kind: string, body: fc.Arbitrary<string | Buffer | undefined>, headers: fc.Arbitrary<Record<string, string>> = fc.constant(op.body === undefined ? {} : JSON_TYPE)): fc.Arbitrary<Parts> =>
    fc.tuple(validPath, validQuery, body, headers).map(([path, query, b, h]) => ({ kind, path, query, headers: h, ...(b !== undefined && { body: b }) }))

  if (op.body === undefined) {
    add(2, make('valid', fc.constant(undefined)))
    // An operation without a body still gets sent one: parsers run before the handler knows.
    add(2, make('unexpected-body', fc.oneof(fc.constantFrom('{}', '{"__proto__":{"polluted":1}}', '{"a":1,"a":2}', ...MALFORMED.slice(0, 12)), fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null')),
      fc.constantFrom({}, JSON_TYPE, { 'content-type': 'text/plain' }, { 'content-type': 'application/x-www-form-urlencoded' })))
  } else {
    const body = op.body
    const properties = Object.keys(body.properties ?? {})
    const entries = validObject(ctx, body)
    const anyProperty = fc.constantFrom(...properties)
    add(2, make('valid', entries.map(objectText)))
    // One property replaced by a hostile value.
    add(8, fc.tuple(entries, anyProperty).chain(([es, name]) =>
      hostile(ctx, body.properties?.[name] ?? {}).chain(([kind, text]) =>
        make(`body:${kind}`, fc.constant(objectText([...es.filter(([k]) => k !== name), [name, text]]))))))
    // Required fields left out.
    if ((body.required ?? []).length > 0) {
      add(1, make('body:missing-required', fc.tuple(entries, fc.subarray(body.required ?? [], { minLength: 1 }))
        .map(([es, missing]) => objectText(es.filter(([k]) => !missing.includes(k))))))
    }
    // Fields the schema does not know, pollution keys among them.
    const extraKey = fc.oneof(fc.constantFrom('role', 'id', 'is_admin', 'password_hash', 'created_at', '', ' ', 'EMAIL', 'email ', ...UNICODE.slice(0, 8)), fc.string({ maxLength: 20 }))
    add(1, make('body:extra-field', fc.tuple(entries, extraKey, fc.constantFrom(...WRONG_TYPES, '"admin"')).map(([es, k, v]) => objectText([...es, [k, v]]))))
    add(1, make('body:proto-key', fc.tuple(entries, fc.constantFrom(...PROTO_ENTRIES), fc.boolean())
      .map(([es, entry, first]) => objectText(first ? [entry, ...es] : [...es, entry]))))
    // The same key twice, in raw JSON text: the valid value first or last.
    add(1, make('body:duplicate-key', fc.tuple(entries, anyProperty, fc.boolean()).chain(([es, name, first]) =>
      hostile(ctx, body.properties?.[name] ?? {}).map(([, text]) => {
        const twice: Entry[] = es.some(([k]) => k === name) ? es : [...es, [name, '"x"']]
        return objectText(first ? [[name, text], ...twice] : [...twice, [name, text]])
      }))))
    add(1, make('body:malformed-json', fc.oneof(fc.constantFrom(...MALFORMED), entries.chain((es) => {
      const text = objectText(es)
      return fc.integer({ min: 0, max: Math.max(0, text.length - 1) }).map((n) => text.slice(0, n))
    }))))
    add(1, make('body:top-level', fc.constantFrom(...TOP_LEVEL)))
    add(1, make('body:huge-number', fc.tuple(entries, anyProperty, fc.constantFrom(...NUMBER_TEXTS.slice(-6)))
      .map(([es, name, n]) => objectText([...es.filter(([k]) => k !== name), [name, n]]))))
    // Bytes that are not UTF-8 inside a string value.
    add(1, make('body:bad-utf8', fc.tuple(anyProperty, fc.constantFrom(...BAD_UTF8), fc.boolean()).map(([name, bytes, embedded]) =>
      Buffer.concat([Buffer.from(`{"${name}":"${embedded ? 'user' : ''}`), bytes, Buffer.from(`${embedded ? '@example.com' : ''}"}`)]))))
    // Over the body limit, and just under it.
    add(1, make('body:oversized', fc.tuple(anyProperty, fc.constantFrom(ctx.bodyLimit + 1, ctx.bodyLimit * 2, ctx.bodyLimit - 20, 1_000_000))
      .map(([name, size]) => `{"${name}":"${'x'.repeat(Math.max(0, size - name.length - 7))}"}`)))
    // Right JSON, wrong (or no) content type; and form or multipart encodings of the same fields.
    add(1, make('content-type', entries.map(objectText), fc.oneof(fc.constantFrom(...CONTENT_TYPES).map((ct) => ({ 'content-type': ct })), fc.constant({}))))
    add(1, make('content-type:form', entries.map((es) => es.map(([k, v]) => `${pct(k)}=${pct(String(JSON.parse(v)))}`).join('&')),
      fc.constantFrom({ 'content-type': 'application/x-www-form-urlencoded' }, JSON_TYPE, {})))
    add(1, make('content-type:multipart', entries.map((es) => `${es.map(([k, v]) => `--fuzz\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${String(JSON.parse(v))}\r\n`).join('')}--fuzz--\r\n`),
      fc.constantFrom({ 'content-type': 'multipart/form-data; boundary=fuzz' }, JSON_TYPE)))
  }

  if (op.pathParams.length > 0) {
    add(4, fc.tuple(validPath, fc.constantFrom(...op.pathParams.map((p) => p.name)), fc.oneof(fc.constantFrom(...BAD_IDS),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }).map(pct)), validQuery, op.body === undefined ? fc.constant(undefined) : validObject(ctx, op.body).map(objectText))
      .map(([path, name, bad, query, body]) => ({ kind: 'path:bad-id', path: { ...path, [name]: bad }, query, headers: body === undefined ? {} : JSON_TYPE, ...(body !== undefined && { body }) })))
  }
  // Query strings on every operation: those without parameters must ignore or refuse them cleanly.
  add(op.query.length > 0 ? 8 : 1, fc.tuple(validPath, queryArb(ctx, op), op.body === undefined ? fc.constant(undefined) : validObject(ctx, op.body).map(objectText))
    .map(([path, [kind, query], body]) => ({ kind, path, query, headers: body === undefined ? {} : JSON_TYPE, ...(body !== undefined && { body }) })))
  return fc.oneof(...kinds)
}

/** Requests for one operation, sent with the given kind of token. */
export function requestArbitrary (context: FuzzContext, op: Operation, auth: AuthKind): fc.Arbitrary<FuzzRequest> {
  const ctx = op.method === 'DELETE' ? { ...context, knownIds: context.knownIds.filter((id) => !context.protectedIds.includes(id)) } : context
  const authorization: fc.Arbitrary<string | undefined> = auth === 'none'
    ? fc.constant(undefined)
    : auth === 'forged' ? fc.constantFrom(...ctx.forged) : fc.constant(`Bearer ${ctx.tokens[auth]}`)
  return fc.tuple(partsArbitrary(ctx, op), authorization).map(([parts, authValue]) => ({
    operationId: op.operationId,
    kind: parts.kind,
    auth,
    method: op.method,
    url: `${pathFor(op, parts.path)}${parts.query === '' ? '' : `?${parts.query}`}`,
    headers: { ...parts.headers, ...(authValue !== undefined && { authorization: authValue }) },
    ...(parts.body !== undefined && { body: parts.body })
  }))
}

/** A request as a line that can be pasted into a bug report or replayed with curl. */
export function describe (req: FuzzRequest): string {
  const body = req.body === undefined
    ? ''
    : ` body(${req.body.length} ${Buffer.isBuffer(req.body) ? 'bytes, hex' : 'chars'}): ${Buffer.isBuffer(req.body) ? req.body.toString('hex').slice(0, 600) : JSON.stringify(req.body.slice(0, 600))}${req.body.length > 600 ? '…' : ''}`
  const url = req.url.length > 300 ? `${req.url.slice(0, 300)}…(${req.url.length} chars)` : req.url
  return `[${req.operationId} ${req.kind} auth=${req.auth}] ${req.method} ${url} headers=${JSON.stringify({ ...req.headers, ...(req.headers.authorization !== undefined && { authorization: `${req.headers.authorization.slice(0, 40)}…` }) })}${body}`
}
