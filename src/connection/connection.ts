import { randomInt } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { inspect } from 'node:util'
import type { ChannelSession } from '../amqp/channel-session.js'
import { type AmqpLink, openAmqpLink } from '../amqp/connect.js'
import { fastPathOff } from '../amqp/fast-path.js'
import { type ConnectionOptions, type FastPath, type ResolvedConfig, resolveConfig } from '../config.js'
import { ConnectionClosedError, LapinError, toLapinError } from '../errors.js'
import { registerConnection, unregisterConnection } from '../telemetry/metrics.js'
import { ConnectionCounters, type ConnectionStats } from '../telemetry/stats.js'
import type { Topology } from '../topology/topology.js'
import { guardLogger, type Logger, silentLogger } from '../util/logger.js'
import { emitError, emitSafely } from '../util/safe-emit.js'
import { checkShortString } from '../util/validate.js'
import { unlessAborted } from '../util/waiters.js'
import { backoffDelay } from './backoff.js'
import { type ConnectionHealth, type HealthError, healthError, silenceLimit } from './health.js'
import { isBuiltIn } from './known-exchanges.js'
import { LoopWatchdog } from './loop-watchdog.js'
import { type Redeclared, SideChannel } from './side-channel.js'

/** Where a connection is in its life. */
export type ConnectionState =
  | 'idle'
  | 'connecting'
  | 'open'
  | 'blocked'
  | 'reconnecting'
  | 'closing'
  | 'closed'

/** What a passive queue check tells (see {@link Connection.checkQueue}). */
export interface QueueInfo {
  /** The queue's name. */
  queue: string
  /** Messages ready for delivery (unacked ones are not counted). */
  messageCount: number
  /** Consumers subscribed to it, on any connection. */
  consumerCount: number
}

/** Typed events of a {@link Connection}. */
export interface ConnectionEvents {
  /** The AMQP connection is open. */
  connected: [
    info: {
      /** The URL of the node connected to, password redacted. */
      url: string
      /** The node connected to, as `host:port` (see {@link Connection.node}). */
      node: string
      /** The cluster's name, as the broker gives it (RabbitMQ: by default its first node's name). */
      clusterName: string | undefined
      /** True when this connection replaces one that was lost. */
      recovered: boolean
    },
  ]
  /** The connection closed; `error` says why when it was not asked for (recovery follows). */
  disconnected: [error: LapinError | undefined]
  /** A connect attempt failed; the next one follows after `delay` ms. */
  reconnecting: [
    info: {
      /** Failed attempts so far, from 1. */
      attempt: number
      /** Milliseconds until the next attempt. */
      delay: number
      /** Why this attempt failed. */
      error: LapinError
    },
  ]
  /** The state changed (see {@link ConnectionState}). */
  state: [state: ConnectionState, previous: ConnectionState]
  /** The broker blocked publishing (resource alarm); `reason` is the broker's text. */
  blocked: [reason: string]
  /** The broker lifted the block. */
  unblocked: []
  /** An error nobody awaited (e.g. recovery gave up). With no listener it goes to the logger and never crashes the process. */
  error: [error: LapinError]
  /**
   * The event loop was blocked for `delayMs`, more than half the heartbeat (`heartbeatMs`, as agreed
   * with the broker): heartbeats could not be sent meanwhile, and the broker drops a connection
   * after two missed ones. Emitted once the loop runs again. Move CPU-bound tasks to worker threads
   * (the Consumer's `workerThreads`).
   */
  eventLoopBlocked: [
    info: {
      /** How long the loop was blocked, in milliseconds. */
      delayMs: number
      /** The heartbeat interval agreed with the broker, in milliseconds. */
      heartbeatMs: number
    },
  ]
}

/**
 * One TCP connection to RabbitMQ with many channels: every publisher and consumer on it gets a
 * channel of its own. Configured from options, else from the `RABBITMQ_*` environment.
 *
 * @example
 * ```ts
 * const connection = new Connection({ url: 'amqp://app:secret@rabbit:5672/prod', name: 'billing' })
 * const publisher = new Publisher({ kind: 'async', connection })
 * const consumer = new Consumer({ queueName: 'invoices', taskFunction, connection })
 * await publisher.start()
 * await consumer.start()
 * // ...
 * await consumer.stop()
 * await publisher.stop()
 * await connection.close()
 * ```
 */
export class Connection extends EventEmitter<ConnectionEvents> {
  readonly #config: ResolvedConfig
  readonly #logger: Logger
  #model: AmqpLink | undefined
  #fastPath: FastPath = fastPathOff
  #fastPathLogged = false
  #connecting: Promise<AmqpLink> | undefined
  #state: ConnectionState = 'idle'
  /** When the current state began (ms since epoch). */
  #stateSince = Date.now()
  /** The last error met, as health() reports it. */
  #lastError: HealthError | undefined
  /** The endpoint the next attempt goes to (modulo their count): it moves on after each failure. */
  #endpointIndex: number
  #closing: Promise<void> | undefined
  /** Exchange checks and declarations, and what they learned (declared again after every recovery). */
  readonly #side: SideChannel = new SideChannel({
    link: () => this.#ensureModel(),
    current: () => this.#model,
    answerDeadline: () => this.#answerDeadline(),
  })
  /** True once a connection was open: later losses are recovered with `recovery.maxRetries`. */
  #wasOpen = false
  /** `host:port` of the node the open connection reached. */
  #node: string | undefined
  /** When the last recovery (a reconnect after a loss) succeeded, ms since epoch. */
  #recoveredAt: number | undefined
  readonly #abortRetry = new AbortController()
  readonly #stats = new ConnectionCounters()
  /** What OpenTelemetry's metrics read of this connection. */
  readonly #metrics = { counters: this.#stats, connection: () => this.name }
  /** Watches the event loop while the connection lives (from the first connect to close). */
  readonly #watchdog = new LoopWatchdog((delayMs, heartbeatMs) => {
    this.#logger.warn(
      { delayMs, heartbeatMs },
      'lapinmq: the event loop was blocked for longer than half the heartbeat; the broker drops the connection after two missed heartbeats. Run CPU-bound tasks in worker threads (Consumer option workerThreads)',
    )
    this.emit('eventLoopBlocked', { delayMs, heartbeatMs })
  })

  /** @param options explicit options; each wins over the environment. */
  constructor(options: ConnectionOptions = {}) {
    super()
    this.#config = resolveConfig(options)
    const { endpoints, urlOrder } = this.#config
    // A fleet started together with the same urls does not pile onto the first node: a process's
    // connections start at the URLs in turn, from a random one (so processes differ too).
    this.#endpointIndex = urlOrder === 'random' ? nextSpreadStart() % endpoints.length : 0
    this.#logger = options.logger === undefined ? silentLogger : guardLogger('logger', options.logger)
    if (this.#config.tls?.rejectUnauthorized === false) {
      this.#logger.warn(
        { name: this.#config.name },
        'lapinmq: TLS certificate verification is off (rejectUnauthorized: false or RABBITMQ_TLS_VERIFY=0): any server can pose as the broker',
      )
    }
  }

  /** @internal How many broker URLs the connection tries in turn. */
  get endpointCount(): number {
    return this.#config.endpoints.length
  }

  /**
   * @internal Where in its URLs the first attempt goes (modulo their count): a pool places its
   * connections one per node. Called right after the constructor, before any connect.
   */
  startAt(index: number): void {
    this.#endpointIndex = index
  }

  /** @internal Where the first attempt goes: `urlOrder` resolved, before any attempt. */
  get urlOrder(): 'random' | 'given' {
    return this.#config.urlOrder
  }

  /** Current state. */
  get state(): ConnectionState {
    return this.#state
  }

  /**
   * How the connection is doing, for readiness and liveness probes: its state, whether it can do
   * its work now (`ready`), whether the broker blocked it, since when it is in its state, and the
   * last error it met. Cheap enough to call on every probe: it reads what the connection keeps.
   *
   * @example
   * ```ts
   * import { createServer } from 'node:http'
   *
   * createServer((req, res) => {
   *   const health = connection.health()
   *   // Ready: able to work now. Live: not closed for good (recovery gave up, or closed).
   *   const ok = req.url === '/readyz' ? health.ready : health.state !== 'closed'
   *   res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(health))
   * }).listen(8080)
   * ```
   */
  health(): ConnectionHealth {
    const state = this.#state
    const silent = this.#model?.silentFor()
    const heard = silent === undefined || silent <= (this.#model?.heartbeat ?? 0) * 1000 * silenceLimit
    return {
      state,
      ready: state === 'open' && heard,
      blocked: state === 'blocked',
      since: this.#stateSince,
      lastError: this.#lastError,
    }
  }

  /** The broker URL in use (or to be tried first), password replaced by `***`. */
  get url(): string {
    return this.#endpoint().display
  }

  /**
   * The node the connection is on, as `host:port` of the URL it reached (brackets around an IPv6
   * address); undefined while it is not open. RabbitMQ's server properties name the cluster, not
   * the node, so the node is named by its address; behind a load balancer it is the balancer's.
   */
  get node(): string | undefined {
    return this.#node
  }

  /** The connection name sent to the broker. */
  get name(): string {
    return this.#config.name
  }

  /**
   * What of the fast path the current (or last) AMQP connection uses: all off before the first
   * connect, with `fastPath: false`, or when the installed amqplib's internals differ from those
   * lapinmq was written for (its traffic then goes through amqplib's own methods).
   */
  get fastPath(): FastPath {
    return this.#fastPath
  }

  /** What this connection went through since it was made: losses, recoveries, blocks. */
  stats(): ConnectionStats {
    return this.#stats.snapshot()
  }

  /** @internal When the current AMQP connection replaced a lost one (ms since epoch); undefined before any loss. */
  get recoveredAt(): number | undefined {
    return this.#recoveredAt
  }

  /** @internal How long the broker has to answer a request: `connectionTimeout` (0 or Infinity: no limit). */
  get answerTimeout(): number {
    return this.#config.connectionTimeout
  }

  /** @internal The connection's `tracing` option: false turns tracing off for what uses it. */
  get tracing(): boolean {
    return this.#config.tracing
  }

  /** The logger given in the options (a silent one otherwise). */
  get logger(): Logger {
    return this.#logger
  }

  /**
   * Opens the connection, trying each URL in turn with backoff (up to `recovery.initialMaxRetries`
   * retries). Idempotent: concurrent calls share one attempt. While the connection recovers from a
   * loss, it resolves once recovery succeeds.
   */
  async connect(): Promise<void> {
    await this.#ensureModel()
  }

  /**
   * @internal Opens a channel, in confirm mode for publishers. Connects first if needed; `signal`
   * ends the wait for the connection (which goes on trying for its other users).
   */
  async openSession(confirm: boolean, signal?: AbortSignal): Promise<ChannelSession> {
    const link = await this.#modelUnless(signal)
    return link.openChannel(confirm)
  }

  /**
   * Deletes a queue and the messages in it, on a short-lived channel of its own. Deleting a queue
   * that does not exist succeeds. Consumers of the queue are cancelled by the broker.
   * Rejects with a {@link LapinError} (e.g. `ACCESS_REFUSED`) when the broker refuses.
   *
   * @example
   * ```ts
   * const connection = new Connection()
   * await connection.deleteQueue('lapinmq-demo.source.1f2e3d4c')
   * await connection.close()
   * ```
   */
  async deleteQueue(name: string): Promise<void> {
    checkShortString('name', name)
    await this.#onShortSession((session) => session.deleteQueue(name))
    this.#side.forgetDeclared('queue', name)
  }

  /**
   * Deletes an exchange and its bindings, on a short-lived channel of its own. Deleting an exchange
   * that does not exist succeeds. An exchange (and its bindings) that {@link declare} declared is
   * no longer declared again after a recovery; the same holds for {@link deleteQueue}.
   *
   * @example
   * ```ts
   * await connection.deleteExchange('events.old')
   * ```
   */
  async deleteExchange(name: string): Promise<void> {
    checkShortString('name', name)
    if (isBuiltIn(name)) throw new TypeError(`exchange '${name}' is built in and cannot be deleted`)
    await this.#onShortSession((session) => session.deleteExchange(name))
    this.#side.forgetDeclared('exchange', name)
  }

  /**
   * Removes every ready message of a queue (unacked ones stay with their consumers), on a
   * short-lived channel of its own; resolves with how many were removed. Rejects with `NOT_FOUND`
   * when there is no such queue.
   *
   * @example
   * ```ts
   * const removed = await connection.purgeQueue('orders.test')
   * ```
   */
  async purgeQueue(name: string): Promise<number> {
    checkShortString('name', name)
    return this.#onShortSession((session) => session.purgeQueue(name))
  }

  /**
   * Checks that a queue exists, without declaring it, on a short-lived channel of its own: its
   * ready-message and consumer counts. Rejects with `NOT_FOUND` when there is no such queue.
   *
   * @example
   * ```ts
   * const { messageCount } = await connection.checkQueue('orders')
   * ```
   */
  async checkQueue(name: string): Promise<QueueInfo> {
    checkShortString('name', name)
    return this.#onShortSession((session) => session.checkQueue(name))
  }

  /** Runs one operation on a channel opened for it and closed after it. */
  async #onShortSession<T>(operation: (session: ChannelSession) => Promise<T>): Promise<T> {
    const session = await this.openSession(false)
    try {
      return await operation(session)
    } finally {
      await session.close()
    }
  }

  /**
   * @internal Whether `exchange` is known to exist on the current AMQP connection: the default
   * exchange and the ones every vhost has always are; others once {@link checkExchange} found them.
   */
  exchangeKnown(exchange: string): boolean {
    return this.#side.exchangeKnown(exchange)
  }

  /**
   * @internal Checks passively, on a side channel, that an exchange exists, so that a publish to a
   * missing one fails alone: a publish to a missing exchange makes the broker close the publishing
   * channel, and every message on it in doubt. Checks run one at a time; what they find is kept
   * until the connection is lost (an exchange can be gone after a recovery). Rejects with
   * `NOT_FOUND` when there is no such exchange.
   */
  checkExchange(exchange: string): Promise<void> {
    return this.#side.checkExchange(exchange)
  }

  /**
   * Declares exchanges, queues and bindings now, in dependency order (exchanges, their alternate
   * exchanges first; queues; bindings), on a channel of the connection's own; and again after every
   * recovery, before publishers and consumers get the connection back, so that a non-durable
   * exchange or queue is there again before anything is published to it. What is declared twice is
   * kept once. A bad topology throws `TypeError`/`RangeError` at the call, naming the field. The
   * broker refusing a declaration (e.g. a queue that exists with other arguments) rejects with its
   * code (`PRECONDITION_FAILED`) and a message naming the declaration and the argument; such a
   * topology is not kept. A redeclare that fails after a recovery is reported as an `error` event.
   *
   * @example
   * ```ts
   * await connection.declare({
   *   exchanges: [{ name: 'events', type: 'topic' }],
   *   queues: [{ name: 'billing', type: 'quorum' }],
   *   bindings: [{ exchange: 'events', queue: 'billing', routingKey: 'invoice.*' }],
   * })
   * ```
   */
  declare(topology: Topology): Promise<void> {
    return this.#side.declare(topology)
  }

  /**
   * @internal Stops declaring again after a recovery what {@link declare} declared under this
   * name (an exchange or queue deleted elsewhere, e.g. through another connection of a pool).
   */
  forgetDeclared(kind: 'exchange' | 'queue', name: string): void {
    this.#side.forgetDeclared(kind, name)
  }

  /** @internal An exchange the broker said is missing after all (deleted since its check). */
  forgetExchange(exchange: string): void {
    this.#side.forgetExchange(exchange)
  }

  /**
   * @internal An exchange that exists but takes no publish (internal, or no write permission):
   * until the connection is lost, checks of it fail with `error` without asking the broker.
   */
  refuseExchange(exchange: string, error: LapinError): void {
    this.#side.refuseExchange(exchange, error)
  }

  /** How long the broker has to answer a check or a declaration: `connectionTimeout`, if any. */
  #answerDeadline(): AbortSignal | undefined {
    const { connectionTimeout } = this.#config
    return connectionTimeout > 0 ? AbortSignal.timeout(connectionTimeout) : undefined
  }

  /** Closes the connection gracefully (its channels close with it). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  /** Closes the socket at once, without the AMQP close handshake. Idempotent. */
  destroy(): void {
    this.#abortRetry.abort()
    this.#closing ??= Promise.resolve()
    const model = this.#model
    this.#model = undefined
    this.#node = undefined
    this.#setState('closed')
    model?.destroy()
  }

  /** `await using connection = new Connection()` closes it gracefully. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  /** Shows the redacted URL and state, never the password. */
  [inspect.custom](): string {
    return `Connection { url: '${this.url}', name: '${this.name}', state: '${this.#state}' }`
  }

  /** What `JSON.stringify` shows: the same fields as `util.inspect`, never the password. */
  toJSON(): {
    /** As {@link Connection.url}: password replaced by `***`. */
    url: string
    /** As {@link Connection.name}. */
    name: string
    /** The current state. */
    state: ConnectionState
  } {
    return { url: this.url, name: this.name, state: this.#state }
  }

  async #close(): Promise<void> {
    this.#abortRetry.abort()
    if (this.#connecting) await this.#connecting.catch(() => undefined)
    const model = this.#model
    this.#setState('closing')
    await model?.close()
    this.#model = undefined
    this.#node = undefined
    this.#setState('closed')
  }

  #setState(state: ConnectionState): void {
    const previous = this.#state
    if (previous === state) return
    this.#state = state
    this.#stateSince = Date.now()
    if (state === 'closed') {
      this.#watchdog.stop()
      unregisterConnection(this.#metrics)
    } else if (state === 'open') registerConnection(this.#metrics)
    this.emit('state', state, previous)
  }

  #endpoint() {
    const endpoints = this.#config.endpoints
    return endpoints[this.#endpointIndex % endpoints.length] ?? (endpoints[0] as (typeof endpoints)[0])
  }

  /** The open connection (connecting first if needed); rejects as soon as `signal` aborts. */
  #modelUnless(signal: AbortSignal | undefined): Promise<AmqpLink> {
    return unlessAborted(
      this.#ensureModel(),
      signal,
      () => new ConnectionClosedError('stopped while waiting for the connection'),
    )
  }

  #ensureModel(): Promise<AmqpLink> {
    if (this.#closing) return Promise.reject(new ConnectionClosedError('connection was closed'))
    if (this.#model) return Promise.resolve(this.#model)
    this.#connecting ??= this.#open().finally(() => {
      this.#connecting = undefined
    })
    return this.#connecting
  }

  /**
   * Connects, trying the endpoints in turn with capped exponential backoff. Refused credentials
   * (403), unknown vhosts (530) and TLS set up wrong (an unreadable file, a broker certificate that
   * does not verify) fail at once: retrying would not help.
   */
  async #open(): Promise<AmqpLink> {
    const recovering = this.#wasOpen
    const { recovery } = this.#config
    const maxRetries = recovering ? recovery.maxRetries : recovery.initialMaxRetries
    this.#setState(recovering ? 'reconnecting' : 'connecting')
    for (let attempt = 0; ; attempt++) {
      const endpoint = this.#endpoint()
      let error: LapinError
      try {
        const model = await openAmqpLink(endpoint, this.#config)
        // A first connect has nothing to redeclare: declare() itself sends what it is given.
        const side = recovering ? await this.#redeclare(model) : undefined
        if (this.#closing) {
          await model.close()
          throw new ConnectionClosedError('connection was closed')
        }
        if (recovering) {
          this.#recoveredAt = Date.now()
          this.#stats.reconnects++
        }
        this.#node = nodeOf(endpoint)
        this.#attach(model, side)
        const node = this.#node
        this.#logger.info(
          { url: endpoint.display, node, name: this.name, recovered: recovering },
          'lapinmq connected',
        )
        this.emit('connected', {
          url: endpoint.display,
          node,
          clusterName: model.server.clusterName,
          recovered: recovering,
        })
        return model
      } catch (err) {
        error = toLapinError(err, `could not connect to ${endpoint.display}`)
        this.#lastError = healthError(error)
      }
      if (this.#closing) throw new ConnectionClosedError('connection was closed', error)
      this.#endpointIndex++
      // A vhost refused while recovering may be one at its connection limit, or not yet back on
      // this node: recovery goes on trying it.
      const permanent = permanentCodes.has(error.code) && !(recovering && error.code === 'NOT_ALLOWED')
      if (permanent || attempt >= maxRetries) {
        this.#setState(recovering ? 'closed' : 'idle')
        this.#logger.error({ code: error.code, attempts: attempt + 1 }, 'lapinmq could not connect')
        throw recovering
          ? new ConnectionClosedError(`connection recovery gave up after ${attempt + 1} attempts`, error)
          : error
      }
      const delay = backoffDelay(attempt, recovery)
      this.#logger.warn(
        { url: endpoint.display, code: error.code, attempt, delay },
        'lapinmq connect failed; retrying',
      )
      this.emit('reconnecting', { attempt: attempt + 1, delay, error })
      try {
        await sleep(delay, undefined, { signal: this.#abortRetry.signal })
      } catch {
        throw new ConnectionClosedError('connection was closed', error)
      }
    }
  }

  /**
   * Declares what declare() declared on a new connection, before it is handed to anyone: on the
   * channel that becomes its side channel. The broker refusing is reported (`error`) and the
   * connection handed over all the same; the connection failing meanwhile is a failed connect.
   */
  async #redeclare(model: AmqpLink): Promise<Redeclared | undefined> {
    const redeclared = await this.#side.redeclare(model, this.#abortRetry.signal)
    const refused = redeclared?.refused ?? []
    if (refused.length > 0) {
      const first = refused[0] as LapinError
      const error = new LapinError(
        first.code,
        `could not declare the topology again after recovery: ${refused.length} declaration(s) refused, the first: ${first.message}`,
        { cause: first, replyCode: first.replyCode, replyText: first.replyText },
      )
      this.#lastError = healthError(error)
      this.#logger.error(
        { code: error.code, refused: refused.length, err: error.message },
        'lapinmq could not declare the topology again after recovery',
      )
      if (this.listenerCount('error') > 0) emitSafely(this, 'error', error)
    }
    return redeclared
  }

  #attach(model: AmqpLink, redeclared: Redeclared | undefined): void {
    this.#model = model
    this.#side.attach(redeclared)
    this.#wasOpen = true
    const before = this.#fastPath
    this.#fastPath = model.fastPath
    // Logged at the first connect, and again only if a reconnect found something else.
    if (!this.#fastPathLogged || !sameFastPath(before, model.fastPath)) {
      this.#fastPathLogged = true
      this.#logger.debug({ fastPath: model.fastPath }, 'lapinmq fast path probed')
    }
    this.#setState('open')
    this.#watchdog.start(model.heartbeat * 1000)
    model.on('blocked', (reason: string) => {
      this.#setState('blocked')
      this.#stats.block()
      this.#logger.warn({ reason }, 'lapinmq connection blocked by the broker')
      this.emit('blocked', reason)
    })
    model.on('unblocked', () => {
      if (this.#state === 'blocked') this.#setState('open')
      this.#stats.unblock()
      this.#logger.info({}, 'lapinmq connection unblocked')
      this.emit('unblocked')
    })
    model.on('close', (error) => {
      if (this.#model !== model) return
      this.#model = undefined
      this.#node = undefined
      if (error) this.#lastError = healthError(error)
      // A block ends with its connection.
      this.#stats.unblock()
      if (!this.#closing) this.#stats.disconnects++
      // A close asked for by close() or destroy() is no incident: a warning would wake someone up.
      // Nor is a broker shutting down gracefully (a rolling restart), or an operator closing the
      // connection: both send CONNECTION_FORCED, and recovery follows at once.
      if (this.#closing) this.#logger.info({}, 'lapinmq connection closed')
      else if (error?.code === 'CONNECTION_FORCED')
        this.#logger.info({ code: error.code }, 'lapinmq disconnected by the broker; recovering')
      else this.#logger.warn({ code: error?.code }, 'lapinmq disconnected')
      this.emit('disconnected', error)
      if (this.#closing) return
      // The node just lost is the one least likely to answer: recovery starts at the next URL. (A
      // frozen node accepts the TCP connection and holds the handshake until connectionTimeout, and
      // answers again once thawed: starting there kept a connection on it.)
      this.#endpointIndex++
      // Recover at once, whether or not a publisher or consumer is waiting: consumers need it.
      this.#ensureModel().catch((e: unknown) =>
        emitError(this, this.#logger, toLapinError(e, 'recovery failed')),
      )
    })
  }
}

/** `host:port` of an endpoint, brackets around an IPv6 address. */
function nodeOf(endpoint: { hostname: string; port: number }): string {
  const host = endpoint.hostname.includes(':') ? `[${endpoint.hostname}]` : endpoint.hostname
  return `${host}:${endpoint.port}`
}

/** Where the next connection with urlOrder 'random' starts: a random point, then one further each time. */
let spreadNext: number | undefined
function nextSpreadStart(): number {
  spreadNext ??= randomInt(1 << 30)
  return spreadNext++
}

/** Failures of a connect that no retry fixes: refused credentials, a vhost the broker will not open, TLS set up wrong. */
const permanentCodes: ReadonlySet<string> = new Set([
  'ACCESS_REFUSED',
  'NOT_ALLOWED',
  'TLS_CONFIG_INVALID',
  'TLS_VERIFY_FAILED',
])

function sameFastPath(a: FastPath, b: FastPath): boolean {
  return a.corkedWrites === b.corkedWrites && a.rawPublish === b.rawPublish && a.rawAck === b.rawAck
}
