/**
 * A tiny TCP proxy for fault injection: put it between the service and PostgreSQL or Redis, then
 * cut the link (`stop`: refused connections, live ones reset), make it a black hole (`blackHole`:
 * connections accepted, nothing forwarded either way) or restore it (`start`, `forward`).
 */
import { createServer, connect, type Server, type Socket } from 'node:net'
import { once } from 'node:events'

export class TcpProxy {
  readonly #target: { host: string, port: number }
  readonly #sockets = new Set<Socket>()
  #server: Server | undefined
  #blackHole = false
  port = 0

  constructor (target: { host: string, port: number }) {
    this.#target = target
  }

  /** Listens (on the same port as before, after a stop) and forwards. */
  async start (): Promise<this> {
    this.#blackHole = false
    const server = createServer((client) => { this.#accept(client) })
    server.listen(this.port, '127.0.0.1')
    await once(server, 'listening')
    const address = server.address()
    if (address !== null && typeof address === 'object') this.port = address.port
    this.#server = server
    return this
  }

  /** An outage: refuses new connections and resets every open one. */
  async stop (): Promise<void> {
    const server = this.#server
    this.#server = undefined
    this.#destroyAll()
    if (server !== undefined) await new Promise((resolve) => server.close(resolve))
  }

  /** A network that swallows packets: connections are accepted, nothing gets through either way. */
  blackHole (): void {
    this.#blackHole = true
  }

  /** Ends a black hole: open connections (whose traffic was lost) are reset, new ones forwarded. */
  forward (): void {
    this.#blackHole = false
    this.#destroyAll()
  }

  get connections (): number {
    return this.#sockets.size
  }

  #destroyAll (): void {
    for (const socket of this.#sockets) socket.destroy()
    this.#sockets.clear()
  }

  #accept (client: Socket): void {
    const upstream = connect(this.#target.port, this.#target.host)
    for (const socket of [client, upstream]) {
      this.#sockets.add(socket)
      socket.on('error', () => {})
      socket.on('close', () => {
        this.#sockets.delete(socket)
        // One side gone: so is the other, as with a real connection.
        client.destroy()
        upstream.destroy()
      })
    }
    client.on('data', (chunk: Buffer) => { if (!this.#blackHole) upstream.write(chunk) })
    upstream.on('data', (chunk: Buffer) => { if (!this.#blackHole) client.write(chunk) })
  }
}
