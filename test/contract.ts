/**
 * Checks real responses against the OpenAPI document the server serves: the status must be
 * documented for the operation, and the body must match the schema documented for its content type,
 * $refs resolved within the document. What the routes serialize is only half the contract; the error
 * handler, hooks and plugins answer too, and only real responses show what they send.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'

interface MediaType { schema?: unknown }
interface ResponseObject { content?: Record<string, MediaType> }
interface Operation { operationId: string, responses: Record<string, ResponseObject | undefined> }
export interface OpenApiDocument { paths: Record<string, Record<string, Operation>> }

export interface Violation { request: string, status: number, problem: string }

/** What check() reads of a response: an inject() answer, or one read off a real socket. */
export type Answer = Pick<LightMyRequestResponse, 'statusCode' | 'headers' | 'rawPayload' | 'body'>

const DOC_ID = 'openapi.json'
const pointer = (...segments: string[]): string =>
  segments.map((s) => `/${encodeURIComponent(s.replaceAll('~', '~0').replaceAll('/', '~1'))}`).join('')

export class ContractChecker {
  readonly violations: Violation[] = []
  /** operationIds that have answered at least once, with the statuses seen. */
  readonly exercised = new Map<string, Set<number>>()
  readonly #ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false })
  readonly #validators = new Map<string, ValidateFunction>()
  // Literal paths before templated ones, so /api/users/export is not taken for /api/users/{id}.
  readonly #routes: Array<{ method: string, path: string, pattern: RegExp, operation: Operation }>

  readonly doc: OpenApiDocument
  readonly app: FastifyInstance | undefined

  /** Without an app, only check() is available (for answers from a server process). */
  constructor (doc: OpenApiDocument, app?: FastifyInstance) {
    this.doc = doc
    this.app = app
    addFormats.default(this.#ajv)
    this.#ajv.addSchema(doc, DOC_ID)
    this.#routes = Object.entries(doc.paths)
      .flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => ({
        method: method.toUpperCase(),
        path,
        pattern: new RegExp(`^${path.replace(/\{[^}]+\}/g, '[^/]+')}$`),
        operation
      })))
      .sort((a, b) => Number(a.path.includes('{')) - Number(b.path.includes('{')))
  }

  /** app.inject, then the response is checked; violations are collected, not thrown. */
  async inject (options: InjectOptions & { method: string, url: string }): Promise<LightMyRequestResponse> {
    const res = await (this.app as FastifyInstance).inject(options)
    this.check(options.method, options.url, res)
    return res
  }

  check (method: string, url: string, res: Answer): void {
    const request = `${method} ${url}`
    const status = res.statusCode
    const fail = (problem: string): void => { this.violations.push({ request, status, problem }) }
    const path = url.split('?')[0] ?? url
    const route = this.#routes.find((r) => r.method === method && r.pattern.test(path))
    if (route === undefined) return fail('no operation in the document')
    const { operationId, responses } = route.operation
    const seen = this.exercised.get(operationId) ?? new Set<number>()
    this.exercised.set(operationId, seen.add(status))

    const statusKey = responses[String(status)] !== undefined ? String(status) : 'default'
    const documented = responses[statusKey]
    if (documented === undefined) return fail(`status ${status} is not documented for ${operationId}`)
    const mediaType = String(res.headers['content-type'] ?? '').split(';')[0]?.trim() ?? ''
    const content = documented.content
    if (content === undefined) {
      if (res.rawPayload.length > 0) fail(`${operationId} ${status} documents no body, but one was sent (${mediaType})`)
      return
    }
    if (content[mediaType]?.schema === undefined) return fail(`${operationId} ${status}: ${mediaType || 'no content type'} is not documented (${Object.keys(content).join(', ')})`)

    const validate = this.#validator(pointer('paths', route.path, method.toLowerCase(), 'responses', statusKey, 'content', mediaType, 'schema'))
    // NDJSON: the documented schema is that of each line.
    const bodies = mediaType === 'application/x-ndjson'
      ? res.body.split('\n').filter((line) => line !== '')
      : [res.body]
    for (const body of bodies) {
      let value: unknown
      try {
        value = JSON.parse(body)
      } catch {
        fail(`${operationId} ${status}: the body is not JSON: ${body.slice(0, 80)}`)
        continue
      }
      if (!validate(value)) fail(`${operationId} ${status} ${mediaType}: ${this.#ajv.errorsText(validate.errors)}`)
    }
  }

  #validator (at: string): ValidateFunction {
    let validate = this.#validators.get(at)
    if (validate === undefined) {
      validate = this.#ajv.compile({ $ref: `${DOC_ID}#${at}` })
      this.#validators.set(at, validate)
    }
    return validate
  }
}
