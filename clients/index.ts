/**
 * A typed Gatehouse client: paths, bodies and responses come from clients/gatehouse.d.ts, which
 * `npm run openapi` generates from the served OpenAPI document, so a change to the API that breaks
 * a caller breaks its type-check.
 */
import createClient, { type Client } from 'openapi-fetch'
import type { components, paths } from './gatehouse.js'

export type { components, paths }
export type GatehouseClient = Client<paths>
export type User = components['schemas']['User']
export type Problem = components['schemas']['Problem']

export interface GatehouseClientOptions {
  /** Called before each request; the token it returns is sent as a bearer token. */
  accessToken?: () => string | undefined
  /** Replaces globalThis.fetch (tests, proxies). */
  fetch?: typeof globalThis.fetch
}

export function createGatehouseClient (baseUrl: string, options: GatehouseClientOptions = {}): GatehouseClient {
  const client = createClient<paths>({ baseUrl, ...(options.fetch !== undefined && { fetch: options.fetch }) })
  const { accessToken } = options
  if (accessToken !== undefined) {
    client.use({
      onRequest ({ request }) {
        const token = accessToken()
        // An explicit authorization header on the call wins, so one client can act as several users.
        if (token !== undefined && !request.headers.has('authorization')) request.headers.set('authorization', `Bearer ${token}`)
        return request
      }
    })
  }
  return client
}
