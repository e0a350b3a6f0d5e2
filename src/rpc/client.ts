import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { inspect } from 'node:util'
import type { Span } from '@opentelemetry/api'
import {
  ChannelClosingError,
  type ChannelSession,
  type Delivery,
  type PublishOptions,
  type ReturnedMessage,
} from '../amqp/channel-session.js'
import type { Connection } from '../connection/connection.js'
import { closedWithConnection } from '../connection/health.js'
import { type ConnectionPool, type Placement, place } from '../connection/pool.js'
import { Reopener } from '../connection/reopener.js'
import { ConnectionClosedError, LapinError, toLapinError, UnroutableError } from '../errors.js'
import { ExchangeChecks } from '../publisher/exchange-checks.js'
import { type SendOptions, toPublishOptions } from '../publisher/options.js'
import { jsonOptions } from '../publisher/publisher.js'
import { refusalOf } from '../publisher/refusals.js'
import { loadOtel } from '../telemetry/otel.js'
import { RpcClientCounters, type RpcClientStats } from '../telemetry/stats.js'
import { checkTracing, endSendSpan, startSendSpan, tracingWanted } from '../telemetry/tracing.js'
import { Fifo } from '../util/fifo.js'
import { encodeJson } from '../util/json.js'
import { bindLogger, componentLogger, type Logger } from '../util/logger.js'
import { emitError } from '../util/safe-emit.js'
import { checkInt, checkShortString, checkTimeout, toBody } from '../util/validate.js'
import { unlessAborted } from '../util/waiters.js'
import { RpcReply } from './reply.js'

/** The pseudo-queue of direct reply-to: replies come straight to the channel that consumes it. */
const directReplyTo = 'amq.rabbitmq.reply-to'

/** Options of an {@link RpcClient}. */
export interface RpcClientOptions {
  /**
   * Deadline of each call in ms, from the call to the reply (waiting for the connection included):
   * past it the call rejects with `RPC_TIMEOUT`. A call's own `timeout` wins. `Infinity`: no
   * deadline (`stop()` and a lost connection still end a call).
   * @default 30000
   */
  timeout?: number
  /**
   * The connection to open the client's channel on, or a pool (its least-loaded connection).
   * @default the process-wide shared publishing connection
   */
  connection?: Connection | ConnectionPool
  /**
   * Most calls sent and awaiting their reply at once; a call beyond it waits for room (within its
   * deadline).
   * @default 1000
   */
  maxInFlight?: number
  /** Logger for this client. @default the connection's logger (silent unless given) */
  logger?: Logger
  /**
   * Trace each call with an OpenTelemetry PRODUCER span, from the call to its reply (or error),
   * whose context goes in the request's headers (see docs/tracing.md); `false` turns it off.
   * @default the connection's `tracing` (true unless set)
   */
  tracing?: boolean
}

/**
 * Options of one call: its deadline, an `AbortSignal`, and the request's AMQP properties (the
 * client sets `correlationId` and `replyTo` itself, and always publishes `mandatory`).
 */
export interface CallOptions
  extends Omit<SendOptions, 'callbacks' | 'correlationId' | 'replyTo' | 'mandatory'> {
  /** Deadline of this call in ms (see {@link RpcClientOptions.timeout}). @default the client's `timeout` */
  timeout?: number
  /** Aborting it ends the call at once with `ABORTED` (a reply that comes later is dropped). */
  signal?: AbortSignal
  /**
   * Persistent requests survive a broker restart in a durable queue; a caller rarely waits that long.
   * @default false
   */
  persistent?: boolean
  /**
   * Per-message TTL of the request in ms: a request no server took by then is dropped by the broker.
   * @default the call's timeout (none when it is `Infinity`)
   */
  expiration?: number | string
}

/** Where a call goes: a queue (through the default exchange), or an exchange and routing key. */
export type RpcTarget =
  | string
  | {
      /** The exchange to publish the request to (it must exist: `NOT_FOUND` otherwise). */
      exchange: string
      /** The routing key of the request. */
      routingKey: string
    }

/** Typed events of an {@link RpcClient}. */
export interface RpcClientEvents {
  /**
   * Something failed that no call reports: the channel could not be reopened because the
   * connection's recovery gave up (every waiting call is rejected with the same error). With no
   * listener it goes to the logger and never crashes the process.
   */
  error: [error: LapinError]
}

type State = 'new' | 'starting' | 'running' | 'stopped'

const noop = (): void => {}

/**
 * Calls a server over RabbitMQ and awaits its reply, over direct reply-to: one channel, with a
 * consumer of `amq.rabbitmq.reply-to` on it, publishes every request (mandatory, with a
 * correlation id unique to this client) and receives every reply. Each call ends in exactly one
 * outcome before its deadline: the reply; `RPC_TIMEOUT`; `ABORTED` (its signal); `UNROUTABLE` (no
 * queue took the request); `CONNECTION_CLOSED` (the connection was lost while it waited: its reply
 * could no longer reach this client; calls made after the recovery work again), or `stop()`.
 *
 * @example
 * ```ts
 * const rpc = new RpcClient({ timeout: 5_000 })
 * await rpc.start()
 * const reply = await rpc.callJson('prices', { sku: 'A-1' })
 * console.log(reply.json<{ price: number }>().price)
 * await rpc.stop()
 * ```
 */
export class RpcClient extends EventEmitter<RpcClientEvents> {
  readonly #timeout: number
  readonly #maxInFlight: number
  readonly #ownConnection: Connection | ConnectionPool | undefined
  #connection: Connection | undefined
  #placement: Placement | undefined
  #logger: Logger
  readonly #loggerGiven: boolean
  readonly #tracingOption: boolean | undefined
  /** Calls are traced (decided at start, from the option and the connection's). */
  #tracing = false
  #state: State = 'new'
  #starting: Promise<void> | undefined
  #stopping: Promise<void> | undefined
  #session: ChannelSession | undefined
  #writable = true
  /** Correlation ids are this prefix (random per client) and a counter. */
  readonly #prefix = `${randomBytes(9).toString('base64url')}.`
  #nextId = 0
  /** Calls not sent yet, oldest first (ended ones are skipped). */
  readonly #waiting = new Fifo<PendingCall>()
  /** Calls sent, by correlation id, awaiting their reply. */
  readonly #awaiting = new Map<string, PendingCall>()
  /** Calls not ended yet, sent or not. */
  #pending = 0
  #lateReplies = 0
  readonly #stats = new RpcClientCounters()
  /** Exchanges checked before the first call to them. */
  readonly #exchangeChecks = new ExchangeChecks({
    found: () => this.#pump(),
    refused: (exchange, error) => {
      // Every waiting call to that exchange gets the broker's answer.
      for (const call of this.#waiting.drain()) {
        if (call.exchange === exchange) this.#end(call, error)
        else if (!call.ended) this.#waiting.push(call)
      }
      this.#pump()
    },
    retries: () => this.#session?.open === true,
    retry: () => this.#pump(),
    logger: () => this.#logger,
  })
  readonly #stopStarting = new AbortController()
  readonly #reopener = new Reopener({
    task: () => this.#open(),
    shouldRun: () => this.#state === 'running',
    onFailure: (err) => this.#onReopenFailed(err),
  })

  constructor(options: RpcClientOptions = {}) {
    super()
    if (typeof options !== 'object' || options === null)
      throw new TypeError('RpcClient options must be an object')
    this.#timeout = checkCallTimeout('timeout', options.timeout ?? 30_000)
    this.#maxInFlight = options.maxInFlight ?? 1000
    checkInt('maxInFlight', this.#maxInFlight, 1, 1_000_000)
    this.#ownConnection = options.connection
    this.#logger = componentLogger(options.logger, options.connection?.logger, rpcBindings)
    this.#loggerGiven = options.logger !== undefined
    this.#tracingOption = checkTracing(options.tracing)
    // Until start() knows the connection: a call that starts the client is traced as its connection says.
    this.#tracing = tracingWanted(this.#tracingOption, options.connection?.tracing)
    if (this.#tracing) loadOtel().catch(noop)
  }

  /** What this client did since it was made: calls and how they ended. */
  stats(): RpcClientStats {
    return this.#stats.snapshot(this.#lateReplies, this.#pending)
  }

  /** Calls not ended yet: waiting to be sent, or sent and awaiting their reply. */
  get pending(): number {
    return this.#pending
  }

  /**
   * Replies dropped because no call awaited them: their call had ended (timed out, aborted, lost
   * with its connection) or their correlation id was never this client's.
   */
  get lateReplies(): number {
    return this.#lateReplies
  }

  /** Opens the connection (if needed) and the client's channel, and starts receiving replies. Idempotent. */
  start(): Promise<void> {
    if (this.#state === 'stopped') return Promise.reject(new ConnectionClosedError('RPC client was stopped'))
    this.#starting ??= this.#start()
    return this.#starting
  }

  /**
   * Sends `body` to `target` (a queue name, or `{ exchange, routingKey }`) and resolves with the
   * reply. Rejects with `RPC_TIMEOUT`, `ABORTED`, `UNROUTABLE`, `CONNECTION_CLOSED`, `NOT_FOUND`
   * (a missing exchange) or the broker's refusal. Bad arguments throw at once. Starts the client
   * if needed.
   */
  call(target: RpcTarget, body: string | Buffer | Uint8Array, options?: CallOptions): Promise<RpcReply> {
    const { exchange, routingKey } = targetOf(target)
    const buffer = toBody(body)
    const timeout =
      options?.timeout === undefined ? this.#timeout : checkCallTimeout('timeout', options.timeout)
    const signal = options?.signal
    if (signal !== undefined && !(signal instanceof AbortSignal))
      throw new TypeError('signal must be an AbortSignal')
    const id = this.#prefix + (this.#nextId++).toString(36)
    const request = requestOptions(options, id, timeout)
    const traced = this.#tracing
      ? startSendSpan(exchange, routingKey, request, buffer.length, this.#connection?.node)
      : undefined
    // A fresh object: the headers that carry the call's context go on it.
    if (traced?.headers !== undefined) request.headers = traced.headers
    const call = new PendingCall(id, exchange, routingKey, buffer, request, timeout)
    if (traced !== undefined) call.span = traced.span
    const { promise } = call
    this.#stats.calls++
    this.#pending++
    if (this.#state === 'stopped') {
      this.#end(call, new ConnectionClosedError('RPC client was stopped'))
      return promise
    }
    if (signal?.aborted) {
      this.#end(call, aborted(signal))
      return promise
    }
    if (signal) call.watch(signal, () => this.#end(call, aborted(signal)))
    if (timeout !== Number.POSITIVE_INFINITY) {
      call.timer = setTimeout(() => this.#end(call, this.#timedOut(call)), timeout)
    }
    this.#waiting.push(call)
    if (this.#state === 'new') this.start().catch(noop)
    else this.#pump()
    return promise
  }

  /**
   * Sends `value` as JSON (`contentType: 'application/json'` unless the options name another);
   * otherwise exactly {@link RpcClient.call}. A value JSON cannot encode throws `TypeError`.
   */
  callJson(target: RpcTarget, value: unknown, options?: CallOptions): Promise<RpcReply> {
    const body = encodeJson(value)
    return this.call(target, body, jsonOptions(options) as CallOptions)
  }

  /**
   * Rejects every pending call with `CONNECTION_CLOSED` (a reply that comes later is dropped),
   * closes the channel and releases the connection. Idempotent.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop()
    return this.#stopping
  }

  /** `await using` calls {@link RpcClient.stop}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }

  /** What `util.inspect` and `console.log` show: state and counts, never bodies. */
  [inspect.custom](): string {
    return `RpcClient { state: '${this.#state}', pending: ${this.#pending}, lateReplies: ${this.#lateReplies} }`
  }

  async #start(): Promise<void> {
    this.#state = 'starting'
    const placement = place(this.#ownConnection, 'publish')
    this.#placement = placement
    this.#connection = placement.connection
    if (!this.#loggerGiven) this.#logger = bindLogger(this.#connection.logger, rpcBindings)
    this.#tracing = tracingWanted(this.#tracingOption, this.#connection.tracing)
    try {
      if (this.#tracing) await loadOtel()
      await this.#open(this.#stopStarting.signal)
    } catch (err) {
      await placement.release()
      this.#connection = undefined
      this.#starting = undefined
      const error = err instanceof LapinError ? err : toLapinError(err, 'could not start the RPC client')
      if (this.#state === 'starting') {
        this.#state = 'new'
        this.#failWaiting(error)
      }
      throw error
    }
    if (this.#state === 'starting') this.#state = 'running'
    this.#pump()
  }

  async #stop(): Promise<void> {
    const starting = this.#starting
    // Set before the first await: a call made after stop() is refused at once.
    this.#state = 'stopped'
    this.#stopStarting.abort()
    this.#reopener.cancel()
    const stopped = new ConnectionClosedError('RPC client stopped before the reply came')
    this.#failWaiting(stopped)
    this.#failAwaiting(stopped)
    if (starting) await starting.catch(noop)
    const session = this.#session
    this.#session = undefined
    await session?.close()
    await this.#placement?.release()
  }

  /**
   * Opens the channel and consumes direct reply-to on it (before any request goes out: the broker
   * refuses a request that names it otherwise). `signal` (start only) ends the wait for the connection.
   */
  async #open(signal?: AbortSignal): Promise<void> {
    const connection = this.#connection
    if (!connection) throw new ConnectionClosedError('RPC client is not started')
    const session = await connection.openSession(false, signal)
    session.onClose((error) => this.#onSessionClosed(session, error))
    session.listenForReturns({
      onReturn: (message) => {
        if (this.#session === session) this.#onReturn(message)
      },
      onDrain: () => {
        if (this.#session !== session) return
        this.#writable = true
        this.#pump()
      },
    })
    const timeout = connection.answerTimeout
    const answered =
      timeout > 0 && timeout !== Number.POSITIVE_INFINITY ? AbortSignal.timeout(timeout) : undefined
    try {
      const consuming = session.consume(
        directReplyTo,
        (delivery) => {
          if (this.#session === session) this.#onReply(delivery)
        },
        { noAck: true },
      )
      await unlessAborted(
        consuming,
        answered,
        () => new LapinError('CONNECTION_FAILED', 'no answer to the consume of direct reply-to'),
      )
    } catch (err) {
      session.close().catch(noop)
      throw err
    }
    if (this.#state === 'stopped') {
      // Stopped while the channel opened: nobody would close it.
      await session.close()
      throw new ConnectionClosedError('RPC client was stopped')
    }
    this.#session = session
    this.#writable = true
    this.#pump()
  }

  /** Sends waiting calls while there is room and the socket takes more. */
  #pump(): void {
    const session = this.#session
    if (!session?.open || this.#state !== 'running') return
    const connection = this.#connection
    while (this.#writable && this.#awaiting.size < this.#maxInFlight) {
      const call = this.#waiting.peek()
      if (!call) break
      if (call.ended) {
        this.#waiting.shift()
        continue
      }
      if (connection && !connection.exchangeKnown(call.exchange)) {
        // A request to a missing exchange would close the channel, and every call on it with it:
        // the exchange is checked first, on the connection's side channel.
        this.#exchangeChecks.check(connection, call.exchange)
        break
      }
      this.#waiting.shift()
      let ok: boolean
      try {
        ok = session.publish(call.exchange, call.routingKey, call.body, call.options)
      } catch (err) {
        if (err instanceof ChannelClosingError) {
          this.#waiting.unshift(call)
          break
        }
        this.#end(call, err as LapinError)
        continue
      }
      call.sent = true
      this.#awaiting.set(call.id, call)
      if (!ok) this.#writable = false
    }
  }

  /** The error of a call past its deadline: says why its request was never sent, if it was not. */
  #timedOut(call: PendingCall): LapinError {
    const target = call.exchange === '' ? `queue '${call.routingKey}'` : `exchange '${call.exchange}'`
    const why = call.sent
      ? ''
      : !this.#session?.open
        ? ': the request was never sent (no channel: the connection was not open)'
        : this.#awaiting.size >= this.#maxInFlight
          ? `: the request was never sent (it waited for room: maxInFlight ${this.#maxInFlight} calls awaited their replies)`
          : ': the request was never sent (the socket took no more, or its exchange was being checked)'
    return new LapinError('RPC_TIMEOUT', `no reply from ${target} within ${call.timeout} ms${why}`)
  }

  #onReply(delivery: Delivery | null): void {
    if (delivery === null) {
      // The broker cancelled the reply consumer: no reply can come any more on this channel.
      this.#session?.close().catch(noop)
      return
    }
    const id = delivery.properties.correlationId
    const call = id === undefined ? undefined : this.#awaiting.get(id)
    if (call === undefined) {
      this.#lateReplies++
      this.#logger.debug({ correlationId: id }, 'lapinmq: reply dropped, no call awaits it')
      return
    }
    this.#end(call, new RpcReply(delivery.body, delivery.properties))
  }

  #onReturn(message: ReturnedMessage): void {
    const id = message.properties.correlationId
    const call = id === undefined ? undefined : this.#awaiting.get(id)
    if (call === undefined) return
    this.#end(
      call,
      new UnroutableError(message.exchange, message.routingKey, message.replyCode, message.replyText),
    )
  }

  /** Ends a call once: its reply or its error. */
  #end(call: PendingCall, outcome: RpcReply | LapinError): void {
    if (call.ended) return
    this.#pending--
    this.#stats.ended(outcome instanceof RpcReply ? undefined : outcome.code)
    if (call.sent && this.#awaiting.delete(call.id)) this.#pump()
    call.end(outcome)
  }

  #onSessionClosed(session: ChannelSession, error: LapinError | undefined): void {
    if (this.#session !== session) return
    this.#session = undefined
    // The request the broker refused (an exchange deleted since its check, a body over the limit)
    // fails with its reason, and a refused exchange is not taken as known any more.
    const refusal = refusalOf(error)
    let refusals = refusal?.limit ?? 0
    if (refusal) {
      for (const call of this.#awaiting.values()) {
        if (refusals === 0 || !refusal.matches(call)) continue
        refusals--
        if (refusal.exchange?.missing) this.#connection?.forgetExchange(call.exchange)
        else if (refusal.exchange) this.#connection?.refuseExchange(call.exchange, refusal.error)
        this.#end(call, refusal.error)
      }
    }
    // Direct reply-to replies go to the channel that sent the request: the calls it sent are over.
    this.#failAwaiting(
      new ConnectionClosedError(
        `the ${error ? 'channel' : 'connection'} closed before the reply came (a reply can only reach the channel that sent the request)`,
        error,
      ),
    )
    if (this.#state !== 'running') return
    const level = closedWithConnection(error, this.#connection) ? 'info' : 'warn'
    this.#logger[level]({ code: error?.code }, 'lapinmq RPC client channel closed; reopening')
    this.#reopener.request()
  }

  /** A reopen failed: retry, unless the connection is closed for good (then fail what waits). */
  #onReopenFailed(err: unknown): boolean {
    const error = err instanceof LapinError ? err : toLapinError(err, 'could not reopen the channel')
    if (error.code !== 'CONNECTION_CLOSED') {
      this.#logger.warn({ code: error.code }, 'lapinmq RPC client could not reopen its channel; retrying')
      return true
    }
    this.#failWaiting(error)
    emitError(this, this.#logger, error)
    return false
  }

  #failWaiting(error: LapinError): void {
    for (const call of this.#waiting.drain()) this.#end(call, error)
  }

  #failAwaiting(error: LapinError): void {
    const calls = [...this.#awaiting.values()]
    this.#awaiting.clear()
    for (const call of calls) this.#end(call, error)
  }
}

/** One call: its request, and how it ends. */
class PendingCall {
  readonly id: string
  readonly exchange: string
  readonly routingKey: string
  readonly body: Buffer
  readonly options: PublishOptions
  readonly timeout: number
  readonly promise: Promise<RpcReply>
  sent = false
  ended = false
  timer: NodeJS.Timeout | undefined
  /** Its span, when the call is traced: ended with its outcome. */
  span: Span | undefined
  #resolve!: (reply: RpcReply) => void
  #reject!: (error: LapinError) => void
  #unwatch: (() => void) | undefined

  constructor(
    id: string,
    exchange: string,
    routingKey: string,
    body: Buffer,
    options: PublishOptions,
    timeout: number,
  ) {
    this.id = id
    this.exchange = exchange
    this.routingKey = routingKey
    this.body = body
    this.options = options
    this.timeout = timeout
    this.promise = new Promise<RpcReply>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    // Pre-handled, as a send's promise is: a call nobody awaits causes no unhandled rejection.
    this.promise.catch(noop)
  }

  /** Calls `onAbort` when `signal` aborts, until the call ends. */
  watch(signal: AbortSignal, onAbort: () => void): void {
    signal.addEventListener('abort', onAbort, { once: true })
    this.#unwatch = () => signal.removeEventListener('abort', onAbort)
  }

  end(outcome: RpcReply | LapinError): void {
    if (this.ended) return
    this.ended = true
    clearTimeout(this.timer)
    this.#unwatch?.()
    if (this.span !== undefined) endSendSpan(this.span, outcome instanceof RpcReply ? undefined : outcome)
    if (outcome instanceof RpcReply) this.#resolve(outcome)
    else this.#reject(outcome)
  }
}

function aborted(signal: AbortSignal): LapinError {
  return new LapinError('ABORTED', 'the call was aborted', { cause: signal.reason })
}

/** A call's deadline: 1..2^31-1 ms, or Infinity. */
function checkCallTimeout(name: string, value: unknown): number {
  const timeout = checkTimeout(name, value)
  if (timeout === 0) throw new RangeError(`${name} must be at least 1 ms (or Infinity), got 0`)
  return timeout
}

function targetOf(target: RpcTarget): { exchange: string; routingKey: string } {
  if (typeof target === 'string') {
    checkShortString('queue', target)
    return { exchange: '', routingKey: target }
  }
  if (typeof target !== 'object' || target === null) {
    throw new TypeError('target must be a queue name or { exchange, routingKey }')
  }
  checkShortString('exchange', target.exchange)
  checkShortString('routingKey', target.routingKey)
  return { exchange: target.exchange, routingKey: target.routingKey }
}

/** Options a call cannot set: the client owns them. */
const ownedOptions = ['callbacks', 'correlationId', 'replyTo', 'mandatory'] as const

/** The publish options of a request: the call's properties, its correlation id, direct reply-to, mandatory. */
function requestOptions(options: CallOptions | undefined, id: string, timeout: number): PublishOptions {
  const expiration =
    timeout === Number.POSITIVE_INFINITY || timeout > 2 ** 32 - 1 ? undefined : String(timeout)
  if (options === undefined) {
    const plain: PublishOptions = {
      persistent: false,
      mandatory: true,
      correlationId: id,
      replyTo: directReplyTo,
    }
    if (expiration !== undefined) plain.expiration = expiration
    return plain
  }
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
  for (const key of ownedOptions) {
    if ((options as Record<string, unknown>)[key] !== undefined) {
      throw new TypeError(`${key} cannot be set on a call: the RPC client sets it`)
    }
  }
  const { timeout: _timeout, signal: _signal, ...send } = options
  const resolved = toPublishOptions({
    ...send,
    persistent: send.persistent ?? false,
    ...(send.expiration === undefined && expiration !== undefined && { expiration }),
  } as SendOptions)
  return { ...resolved, mandatory: true, correlationId: id, replyTo: directReplyTo }
}

/** What an RPC client's log lines carry, with a logger that has `child()`. */
const rpcBindings = { lapinmq: 'rpc-client' }
