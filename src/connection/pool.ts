import { randomInt } from 'node:crypto'
import { inspect } from 'node:util'
import type { ConnectionOptions } from '../config.js'
import type { Topology } from '../topology/topology.js'
import type { Logger } from '../util/logger.js'
import { checkInt } from '../util/validate.js'
import { Connection, type ConnectionState, type QueueInfo } from './connection.js'
import type { ConnectionPoolHealth } from './health.js'
import { acquireShared, releaseShared, type SharedRole } from './shared.js'

/** Options of a {@link ConnectionPool}: its size, and the options every one of its connections gets. */
export interface ConnectionPoolOptions extends ConnectionOptions {
  /**
   * How many connections the pool holds, from 1 to 1000. RabbitMQ reads each connection in a
   * process of its own, so a busy application can spread its channels over several; with `urls`,
   * the connections also spread over the nodes.
   * @default 2
   */
  size?: number
  /**
   * The pool's name: its connections are named `<name>#0`, `<name>#1`, … in the management UI and
   * `rabbitmqctl list_connections`.
   * @default 'lapinmq'
   */
  name?: string
}

/** How one connection of a pool is doing, as `util.inspect` and `JSON.stringify` show it. */
export interface PooledConnectionInfo {
  /** The broker URL in use (or to be tried first), password replaced by `***`. */
  url: string
  /** The connection name sent to the broker. */
  name: string
  /** The connection's state. */
  state: ConnectionState
  /** Publishers and consumers placed on it now. */
  load: number
}

/**
 * Several connections used as one: a pool is accepted wherever a {@link Connection} is (the
 * `connection` option of publishers and consumers), and each publisher or consumer started on it
 * gets its channel on the pool's least-loaded connection (the fewest publishers and consumers
 * placed on it; on a tie, the first). It keeps that connection until it stops: after a loss, the
 * connection recovers (to another node, with `urls`) and the channel is opened on it again. With
 * several `urls`, connection `i` starts at URL `(start + i) mod urls.length` (`start` random, or
 * the first with `urlOrder: 'given'`), so a pool of 3 over a 3-node cluster has one connection per
 * node, and losing a node moves only that connection's channels.
 *
 * @example
 * ```ts
 * const pool = new ConnectionPool({ size: 3, urls: ['amqp://rabbit-1', 'amqp://rabbit-2', 'amqp://rabbit-3'] })
 * const publisher = new Publisher({ kind: 'async', connection: pool })
 * const consumer = new Consumer({ queueName: 'invoices', taskFunction, connection: pool })
 * await publisher.start() // on pool.connections[0]
 * await consumer.start() // on pool.connections[1]
 * // ...
 * await consumer.stop()
 * await publisher.stop()
 * await pool.close()
 * ```
 */
export class ConnectionPool {
  readonly #connections: readonly Connection[]
  /** Publishers and consumers placed on each connection, by index. */
  readonly #loads: number[]
  readonly #name: string
  #closing: Promise<void> | undefined

  /** @param options the pool's size, and options every connection gets (each wins over the environment). */
  constructor(options: ConnectionPoolOptions = {}) {
    const { size = 2, ...connectionOptions } = options
    checkInt('size', size, 1, 1000)
    this.#name = options.name ?? 'lapinmq'
    const connections = Array.from(
      { length: size },
      (_, i) => new Connection({ ...connectionOptions, name: `${this.#name}#${i}` }),
    )
    const first = connections[0] as Connection
    const urls = first.endpointCount
    const start = first.urlOrder === 'random' ? randomInt(urls) : 0
    startIndices(size, urls, start).forEach((index, i) => {
      connections[i]?.startAt(index)
    })
    this.#connections = Object.freeze(connections)
    this.#loads = connections.map(() => 0)
  }

  /** The pool's connections, in order (their events, states and URLs are theirs to tell). */
  get connections(): readonly Connection[] {
    return this.#connections
  }

  /** How many connections the pool holds. */
  get size(): number {
    return this.#connections.length
  }

  /** The pool's name (its connections are `<name>#0`, `<name>#1`, …). */
  get name(): string {
    return this.#name
  }

  /** Publishers and consumers placed on each connection now, by index in {@link connections}. */
  get loads(): readonly number[] {
    return [...this.#loads]
  }

  /** The logger given in the options (a silent one otherwise). */
  get logger(): Logger {
    return (this.#connections[0] as Connection).logger
  }

  /** @internal The connections' `tracing` option. */
  get tracing(): boolean {
    return (this.#connections[0] as Connection).tracing
  }

  /**
   * Opens every connection (see {@link Connection.connect}). Publishers and consumers open the
   * connection they are placed on themselves: this is for failing fast at start-up.
   */
  async connect(): Promise<void> {
    await Promise.all(this.#connections.map((c) => c.connect()))
  }

  /**
   * Declares a topology (see {@link Connection.declare}) on every connection of the pool, first on
   * one and then, once the broker accepted it, on the others: whichever connection recovers
   * declares it again before its publishers and consumers get it back. A bad topology throws
   * `TypeError`/`RangeError` at the call.
   *
   * @example
   * ```ts
   * await pool.declare({ queues: [{ name: 'billing', type: 'quorum' }] })
   * ```
   */
  declare(topology: Topology): Promise<void> {
    const [first, ...rest] = this.#connections as [Connection, ...Connection[]]
    // Called now, not after an await: a bad topology throws at the call, as Connection.declare does.
    const declared = first.declare(topology)
    return declared.then(async () => {
      await Promise.all(rest.map((c) => c.declare(topology)))
    })
  }

  /**
   * Deletes a queue (see {@link Connection.deleteQueue}) through the first connection; no
   * connection of the pool declares it again after a recovery.
   */
  async deleteQueue(name: string): Promise<void> {
    await (this.#connections[0] as Connection).deleteQueue(name)
    for (const c of this.#connections) c.forgetDeclared('queue', name)
  }

  /**
   * Deletes an exchange and its bindings (see {@link Connection.deleteExchange}) through the first
   * connection; no connection of the pool declares them again after a recovery.
   */
  async deleteExchange(name: string): Promise<void> {
    await (this.#connections[0] as Connection).deleteExchange(name)
    for (const c of this.#connections) c.forgetDeclared('exchange', name)
  }

  /** Removes every ready message of a queue (see {@link Connection.purgeQueue}), through the first connection. */
  purgeQueue(name: string): Promise<number> {
    return (this.#connections[0] as Connection).purgeQueue(name)
  }

  /** Checks that a queue exists (see {@link Connection.checkQueue}), through the first connection. */
  checkQueue(name: string): Promise<QueueInfo> {
    return (this.#connections[0] as Connection).checkQueue(name)
  }

  /**
   * How the pool is doing (see {@link Connection.health}): ready when every connection is, since
   * each publisher and consumer works on its own connection; each connection's health besides.
   *
   * @example
   * ```ts
   * const { ready, connections } = pool.health()
   * if (!ready) console.log(connections.filter((c) => !c.ready).map((c) => c.state))
   * ```
   */
  health(): ConnectionPoolHealth {
    const connections = this.#connections.map((c) => c.health())
    return { ready: connections.every((c) => c.ready), connections }
  }

  /**
   * Closes every connection gracefully. Idempotent. Publishers and consumers still on the pool
   * fail as on a closed connection; a start after the close rejects with `ConnectionClosedError`.
   */
  close(): Promise<void> {
    this.#closing ??= Promise.all(this.#connections.map((c) => c.close())).then(noop)
    return this.#closing
  }

  /** Closes every connection's socket at once (see {@link Connection.destroy}). Idempotent. */
  destroy(): void {
    this.#closing ??= Promise.resolve()
    for (const c of this.#connections) c.destroy()
  }

  /** `await using pool = new ConnectionPool()` closes it gracefully. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  /**
   * @internal Places a publisher or consumer on the least-loaded connection; the placement's
   * release gives the place back (once). A closed pool still answers, with a closed connection:
   * the user's start then fails with `ConnectionClosedError`, as on a closed connection.
   */
  place(): Placement {
    const index = leastLoaded(this.#loads)
    const connection = this.#connections[index] as Connection
    if (this.#closing) return { connection, release: resolved }
    this.#loads[index] = (this.#loads[index] ?? 0) + 1
    let released = false
    return {
      connection,
      release: () => {
        if (!released) {
          released = true
          this.#loads[index] = (this.#loads[index] ?? 1) - 1
        }
        return resolved()
      },
    }
  }

  /** Each connection's URL (password redacted), name, state and load. */
  #infos(): PooledConnectionInfo[] {
    return this.#connections.map((c, i) => ({
      url: c.url,
      name: c.name,
      state: c.state,
      load: this.#loads[i] ?? 0,
    }))
  }

  /** Shows each connection's redacted URL, name, state and load, never a password. */
  [inspect.custom](): string {
    const lines = this.#infos().map(
      (c) => `    { url: '${c.url}', name: '${c.name}', state: '${c.state}', load: ${c.load} }`,
    )
    return `ConnectionPool { name: '${this.#name}', size: ${this.size}, connections: [\n${lines.join(',\n')}\n  ] }`
  }

  /** What `JSON.stringify` shows: the same fields as `util.inspect`, never a password. */
  toJSON(): {
    /** As {@link ConnectionPool.name}. */
    name: string
    /** As {@link ConnectionPool.size}. */
    size: number
    /** Each connection's redacted URL, name, state and load. */
    connections: PooledConnectionInfo[]
  } {
    return { name: this.#name, size: this.size, connections: this.#infos() }
  }
}

/** @internal Where a publisher or consumer opens its channel, and how it gives that place back. */
export interface Placement {
  readonly connection: Connection
  /** Gives the place back; idempotent (a shared connection closes with its last user). */
  release(): Promise<void>
}

/**
 * @internal Places a publisher or consumer: on the connection it was given, on its pool's
 * least-loaded connection, or (none given) on the process-wide shared connection for `role`.
 */
export function place(given: Connection | ConnectionPool | undefined, role: SharedRole): Placement {
  if (given instanceof ConnectionPool) return given.place()
  if (given) return { connection: given, release: resolved }
  const connection = acquireShared(role)
  let released: Promise<void> | undefined
  return {
    connection,
    release: () => {
      released ??= releaseShared(connection)
      return released
    },
  }
}

/** @internal The index of the smallest load; on a tie, the lowest index. */
export function leastLoaded(loads: readonly number[]): number {
  let best = 0
  for (let i = 1; i < loads.length; i++) {
    if ((loads[i] as number) < (loads[best] as number)) best = i
  }
  return best
}

/** @internal Where each of `size` connections starts among `urls` URLs: one after the other from `start`. */
export function startIndices(size: number, urls: number, start: number): number[] {
  return Array.from({ length: size }, (_, i) => (start + i) % urls)
}

const noop = (): void => {}
const resolved = (): Promise<void> => Promise.resolve()
