// An in-process TCP proxy between a client under test and the broker, for fault tests: it can hold
// back the bytes of either direction (a black hole: the peer sees silence, not a close), let them
// through again, reset every connection at once, and delay every byte by a fixed one-way latency
// (a round trip then costs twice that). No bandwidth shaping.
//
//   const proxy = await TcpProxy.start()
//   const connection = new Connection({ url: proxy.url(), heartbeat: 0 })
//   proxy.pause()   // broker → client bytes are held: no confirms, no deliveries
//   proxy.resume()  // held bytes are delivered, in order, and forwarding goes on
//   proxy.cut()     // every proxied connection is reset; new ones are still accepted
//   proxy.latency = 10  // each direction delays bytes 10 ms: 20 ms round trip
//   await proxy.close()
import { once } from 'node:events'
import { createConnection, createServer, type Server, type Socket } from 'node:net'

/** Which way bytes flow: `toClient` is broker → client, `toBroker` is client → broker. */
export type Direction = 'toClient' | 'toBroker' | 'both'

/** One proxied connection: the client's socket, the broker's socket, and bytes held back each way. */
interface Link {
  client: Socket
  broker: Socket
  held: { toClient: Buffer[]; toBroker: Buffer[] }
  delayed: { toClient: DelayLine; toBroker: DelayLine }
}

/**
 * Chunks on their way one direction, each with the time it is due. One timer per line, and every
 * chunk due when it fires goes out in one corked write: a timer and a write per chunk make the
 * proxy, not the link, the limit under load (it shares the machine's cores with broker and client).
 */
class DelayLine {
  readonly #out: Socket
  #due: number[] = []
  #chunks: Buffer[] = []
  #timer: NodeJS.Timeout | undefined

  constructor(out: Socket) {
    this.#out = out
  }

  get empty(): boolean {
    return this.#chunks.length === 0
  }

  push(chunk: Buffer, delayMs: number): void {
    this.#due.push(performance.now() + delayMs)
    this.#chunks.push(chunk)
    this.#timer ??= setTimeout(this.#flush, delayMs)
  }

  readonly #flush = (): void => {
    this.#timer = undefined
    if (this.#out.destroyed) return
    const now = performance.now()
    let n = 0
    // Node's timers round to whole ms: a chunk due within the next ms goes now.
    while (n < this.#due.length && (this.#due[n] as number) <= now + 1) n++
    this.#out.cork()
    for (const chunk of this.#chunks.splice(0, n)) this.#out.write(chunk)
    this.#out.uncork()
    this.#due.splice(0, n)
    const next = this.#due[0]
    if (next !== undefined) this.#timer = setTimeout(this.#flush, Math.max(0, next - now))
  }
}

export class TcpProxy {
  readonly #server: Server
  readonly #target: { host: string; port: number }
  readonly #links = new Set<Link>()
  readonly #paused = { toClient: false, toBroker: false }
  #accepted = 0
  /** One-way delay in ms applied to every chunk, in both directions. Order is kept. */
  latency = 0

  private constructor(server: Server, target: { host: string; port: number }) {
    this.#server = server
    this.#target = target
    server.on('connection', (client) => this.#link(client))
  }

  /** Listens on 127.0.0.1 on a free port and forwards to `target` (the test broker by default). */
  static async start(target: { host?: string; port?: number } = {}): Promise<TcpProxy> {
    const server = createServer({ noDelay: true })
    const proxy = new TcpProxy(server, { host: target.host ?? '127.0.0.1', port: target.port ?? 5672 })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    return proxy
  }

  /** The port the proxy listens on (on 127.0.0.1). */
  get port(): number {
    const address = this.#server.address()
    if (address === null || typeof address === 'string') throw new Error('proxy is not listening')
    return address.port
  }

  /** Connections accepted so far (a reconnect counts again). */
  get accepted(): number {
    return this.#accepted
  }

  /** Connections open now. */
  get open(): number {
    return this.#links.size
  }

  /** An AMQP URL through the proxy, guest/guest on the default vhost unless told otherwise. */
  url(credentials = 'guest:guest'): string {
    return `amqp://${credentials}@127.0.0.1:${this.port}/`
  }

  /**
   * Stops forwarding bytes one way (broker → client by default), on open connections and on any
   * accepted later. The bytes are held, not dropped, so `resume()` keeps the AMQP stream intact.
   * Nothing is closed: to the client the broker has simply gone silent.
   */
  pause(direction: Direction = 'toClient'): void {
    for (const d of sides(direction)) this.#paused[d] = true
  }

  /** Delivers the bytes held back, in order, and forwards again. */
  resume(direction: Direction = 'both'): void {
    for (const d of sides(direction)) {
      this.#paused[d] = false
      for (const link of this.#links) {
        const out = d === 'toClient' ? link.client : link.broker
        for (const chunk of link.held[d].splice(0)) out.write(chunk)
      }
    }
  }

  /**
   * Resets every open connection at once (TCP RST on both sides), like a network failure, and drops
   * the bytes held. The proxy keeps listening, so a client may reconnect through it.
   */
  cut(): void {
    for (const link of [...this.#links]) {
      link.client.resetAndDestroy()
      link.broker.resetAndDestroy()
      this.#links.delete(link)
    }
  }

  /** Stops listening and cuts every connection. Idempotent. */
  async close(): Promise<void> {
    this.cut()
    if (!this.#server.listening) return
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  #link(client: Socket): void {
    this.#accepted++
    const broker = createConnection({ host: this.#target.host, port: this.#target.port, noDelay: true })
    const link: Link = {
      client,
      broker,
      held: { toClient: [], toBroker: [] },
      delayed: { toClient: new DelayLine(client), toBroker: new DelayLine(broker) },
    }
    this.#links.add(link)
    const end = (): void => {
      if (!this.#links.delete(link)) return
      client.destroy()
      broker.destroy()
    }
    // A reset or close on one side closes the other; errors are expected in fault tests.
    for (const socket of [client, broker]) {
      socket.on('error', end)
      socket.on('close', end)
    }
    // Written before the broker socket connects, client bytes are queued by the socket itself.
    client.on('data', (chunk: Buffer) => this.#forward(link, 'toBroker', chunk))
    broker.on('data', (chunk: Buffer) => this.#forward(link, 'toClient', chunk))
  }

  #forward(link: Link, direction: 'toClient' | 'toBroker', chunk: Buffer): void {
    if (this.#paused[direction]) {
      link.held[direction].push(chunk)
      return
    }
    const line = link.delayed[direction]
    // Behind chunks still delayed, even with the latency just set to 0: the stream stays in order.
    if (this.latency > 0 || !line.empty) line.push(chunk, this.latency)
    else (direction === 'toClient' ? link.client : link.broker).write(chunk)
  }
}

function sides(direction: Direction): ('toClient' | 'toBroker')[] {
  return direction === 'both' ? ['toClient', 'toBroker'] : [direction]
}
