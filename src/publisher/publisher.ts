import { EventEmitter } from 'node:events'
import { inspect } from 'node:util'
import {
  ChannelClosingError,
  type ChannelSession,
  type PublishOptions,
  type ReturnedMessage,
} from '../amqp/channel-session.js'
import type { Connection } from '../connection/connection.js'
import { closedWithConnection } from '../connection/health.js'
import { type ConnectionPool, type Placement, place } from '../connection/pool.js'
import { Reopener } from '../connection/reopener.js'
import { ConfirmTimeoutError, ConnectionClosedError, LapinError, PublishNackedError } from '../errors.js'
import { type PublisherSource, registerPublisher, unregisterPublisher } from '../telemetry/metrics.js'
import { loadOtel } from '../telemetry/otel.js'
import { PublisherCounters, type PublisherStats } from '../telemetry/stats.js'
import { startSendSpan, tracingWanted } from '../telemetry/tracing.js'
import { declareTopology, type TopologyPlan } from '../topology/topology.js'
import { encodeJson } from '../util/json.js'
import { bindLogger, componentLogger, type Logger } from '../util/logger.js'
import { emitError, emitSafely } from '../util/safe-emit.js'
import { checkShortString, checkTimeout, toBody } from '../util/validate.js'
import { Waiters, waitAtMost } from '../util/waiters.js'
import { ConfirmTracker } from './confirm-tracker.js'
import { ExchangeChecks } from './exchange-checks.js'
import { FailoverNacks, replacementDelay } from './failover-nacks.js'
import {
  type PublisherOptions,
  resolvePublisherOptions,
  type SendDefaults,
  type SendOptions,
  toPublishOptions,
  withDefaults,
} from './options.js'
import { PendingSend, settleSend, WaitingSends } from './pending-send.js'
import { refusalOf } from './refusals.js'

/** Where a publisher is in its life. */
export type PublisherState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped'

/** Typed events of a {@link Publisher}. */
export interface PublisherEvents {
  /**
   * Something failed that no send's promise reports: the channel could not be reopened because
   * the connection's recovery gave up (every waiting send is rejected with the same error).
   * With no listener it goes to the logger and never crashes the process.
   */
  error: [error: LapinError]
  /** The state changed (see {@link PublisherState}). */
  state: [state: PublisherState, previous: PublisherState]
}

type State = PublisherState

const noop = (): void => {}

/**
 * Publishes messages with publisher confirms: every send's promise resolves when the broker has
 * taken responsibility for the message and rejects with a typed error otherwise. Messages are
 * persistent and mandatory by default.
 *
 * @example
 * ```ts
 * const publisher = new Publisher({ kind: 'async' })
 * await publisher.start()
 * await publisher.sendMessageToQueue('task_queue', 'a body')
 * await publisher.sendJsonToQueue('task_queue', { id: 1 })
 * await publisher.stop()
 * ```
 */
export class Publisher extends EventEmitter<PublisherEvents> {
  readonly #kind: 'sync' | 'async'
  readonly #maxInFlight: number
  readonly #confirmTimeout: number
  readonly #republish: boolean
  /** Send options under each send's own; undefined (no merge at all) when none were given. */
  readonly #defaults: SendDefaults | undefined
  /** `defaults` made into publish options once, for the sends that give no options of their own. */
  readonly #defaultPublishOptions: PublishOptions | undefined
  readonly #maxBuffered: number
  readonly #maxBufferedBytes: number
  readonly #maxMessageSize: number
  readonly #topology: TopologyPlan | undefined
  readonly #tracingOption: boolean | undefined
  /** Sends are traced (decided at start, from the option and the connection's). */
  #tracing = false
  readonly #ownConnection: Connection | ConnectionPool | undefined
  #connection: Connection | undefined
  /** Where start() placed the channel, given back at stop(). */
  #placement: Placement | undefined
  #logger: Logger
  readonly #loggerGiven: boolean
  #state: State = 'new'
  #starting: Promise<void> | undefined
  #stopping: Promise<void> | undefined
  #session: ChannelSession | undefined
  readonly #reopener = new Reopener({
    task: () => this.#openSession().then(() => this.#pump()),
    shouldRun: () => this.#state === 'starting' || this.#state === 'running' || this.#state === 'stopping',
    onFailure: (err) => this.#onReopenFailed(err),
  })
  /** Sends not yet published, oldest first. */
  readonly #waiting = new WaitingSends()
  /** Published sends awaiting their confirm. */
  readonly #unconfirmed = new ConfirmTracker()
  #writable = true
  /** Which nacks of the current channel are sent again on a fresh one (a failover's artefact). */
  readonly #failoverNacks = new FailoverNacks()
  /** Nacked sends to go out again once the current channel, which only nacks them, is replaced. */
  #nackedAgain: PendingSend[] = []
  /** The channel being replaced: nothing more is published on it; closed once nothing on it is unconfirmed. */
  #retiring: ChannelSession | undefined
  /** Channels replaced by #replaceChannel: their close, when it comes, is no loss. */
  readonly #replaced = new WeakSet<ChannelSession>()
  /** Channels replaced in a row without a confirm (the delay before the next grows with it). */
  #replacements = 0
  /** When this publisher's channel was last lost (ms since epoch), a change like a recovery. */
  #channelLostAt: number | undefined
  /** Sends still to go out one at a time after an unexplained refusal (see #onSessionClosed). */
  #isolating = 0
  /** Exchanges checked before the first send to them. */
  readonly #exchangeChecks = new ExchangeChecks({
    found: () => this.#pump(),
    refused: (exchange, error) => {
      // Every waiting send to that exchange gets the broker's answer.
      for (const pending of this.#waiting.drain()) {
        if (pending.exchange === exchange) settleSend(pending, error, this.#logger)
        else this.#waiting.push(pending)
      }
      this.#pump()
      this.#checkIdle()
    },
    retries: () => this.#session?.open === true,
    retry: () => this.#pump(),
    logger: () => this.#logger,
  })
  #timer: NodeJS.Timeout | undefined
  readonly #roomWaiters = new Waiters()
  readonly #idleWaiters = new Waiters()
  /** Aborted by stop(): a start still waiting for the connection gives up. */
  readonly #stopStarting = new AbortController()
  readonly #stats = new PublisherCounters()
  /** What OpenTelemetry's metrics read of this publisher. */
  readonly #metrics: PublisherSource = {
    counters: this.#stats,
    buffered: () => this.waiting,
    inFlight: () => this.#unconfirmed.size,
    connection: () => this.#connection?.name ?? '',
  }

  constructor(options: PublisherOptions) {
    super()
    const settings = resolvePublisherOptions(options)
    this.#kind = settings.kind
    this.#maxInFlight = settings.maxInFlight
    this.#confirmTimeout = settings.confirmTimeout
    this.#republish = settings.republish
    this.#defaults = settings.defaults
    this.#defaultPublishOptions = settings.defaults && toPublishOptions(settings.defaults)
    this.#maxBuffered = settings.maxBuffered
    this.#maxBufferedBytes = settings.maxBufferedBytes
    this.#maxMessageSize = settings.maxMessageSize
    this.#topology = settings.topology
    this.#tracingOption = settings.tracing
    // Until start() knows the connection: a send that starts the publisher is traced as its connection says.
    this.#tracing = tracingWanted(settings.tracing, options.connection?.tracing)
    if (this.#tracing) loadOtel().catch(noop)
    this.#ownConnection = options.connection
    this.#logger = componentLogger(options.logger, options.connection?.logger, publisherBindings)
    this.#loggerGiven = options.logger !== undefined
  }

  /** `'sync'` or `'async'`. */
  get kind(): 'sync' | 'async' {
    return this.#kind
  }

  /** Messages published and not yet confirmed (never more than `maxInFlight`). */
  get unconfirmed(): number {
    return this.#unconfirmed.size
  }

  /** Current state. */
  get state(): PublisherState {
    return this.#state
  }

  /** Sends waiting for room in the window. */
  get waiting(): number {
    return this.#waiting.length + this.#nackedAgain.length
  }

  /** What this publisher did since it was made: counters, and the confirm latency's percentiles. */
  stats(): PublisherStats {
    return this.#stats.snapshot(this.waiting, this.#unconfirmed.size)
  }

  /** Opens the connection (if needed) and a confirm channel, and declares the `topology` (if any) on it. Idempotent. */
  start(): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'stopped') {
      return Promise.reject(new ConnectionClosedError('publisher was stopped'))
    }
    this.#starting ??= this.#start()
    return this.#starting
  }

  /**
   * Publishes `body` to `exchange` with `routingKey`. Resolves once the broker confirms it; rejects
   * with `UnroutableError`, `PublishNackedError`, `ConfirmTimeoutError` or `ConnectionClosedError`.
   * The promise is pre-handled: not awaiting it never causes an unhandled rejection.
   * Bad arguments throw at once (`TypeError`/`RangeError`), before anything is sent.
   */
  sendMessage(
    exchange: string,
    routingKey: string,
    body: string | Buffer | Uint8Array,
    options?: SendOptions,
  ): Promise<void> {
    checkShortString('exchange', exchange)
    checkShortString('routingKey', routingKey)
    const buffer = toBody(body)
    const defaults = this.#defaults
    let publishOptions =
      defaults === undefined
        ? toPublishOptions(options)
        : options === undefined
          ? (this.#defaultPublishOptions as PublishOptions)
          : toPublishOptions(withDefaults(defaults, options))
    const traced = this.#tracing
      ? startSendSpan(exchange, routingKey, publishOptions, buffer.length, this.#connection?.node)
      : undefined
    if (traced?.headers !== undefined) publishOptions = { ...publishOptions, headers: traced.headers }
    const pending = new PendingSend(
      exchange,
      routingKey,
      buffer,
      publishOptions,
      Date.now() + this.#confirmTimeout,
      options?.callbacks,
    )
    if (traced !== undefined) pending.span = traced.span
    pending.stats = this.#stats
    this.#stats.sends++
    const { promise } = pending
    if (this.#state === 'stopping' || this.#state === 'stopped') {
      settleSend(pending, new ConnectionClosedError('publisher was stopped'), this.#logger)
      return promise
    }
    if (buffer.length > this.#maxMessageSize) {
      const text = `the body is ${buffer.length} bytes, more than maxMessageSize (${this.#maxMessageSize}); the broker would refuse it`
      settleSend(pending, new LapinError('MESSAGE_TOO_LARGE', text), this.#logger)
      return promise
    }
    const waiting = this.#waiting
    if (
      waiting.length >= this.#maxBuffered ||
      (waiting.length > 0 && waiting.bytes + buffer.length > this.#maxBufferedBytes)
    ) {
      const text = `${waiting.length} sends (${waiting.bytes} bytes) already wait to be published (maxBuffered ${this.#maxBuffered}, maxBufferedBytes ${this.#maxBufferedBytes})`
      settleSend(pending, new LapinError('BUFFER_FULL', text), this.#logger)
      return promise
    }
    this.#waiting.push(pending)
    this.#armTimer(pending.deadline)
    if (this.#state === 'new') this.start().catch(noop)
    else if (this.#session) this.#pump()
    else if (this.#state === 'running' && !this.#reopener.active) this.#reopener.request()
    return promise
  }

  /** Publishes to the default exchange with the queue's name as routing key. */
  sendMessageToQueue(
    queueName: string,
    body: string | Buffer | Uint8Array,
    options?: SendOptions,
  ): Promise<void> {
    return this.sendMessage('', queueName, body, options)
  }

  /**
   * Publishes `value` as JSON (`JSON.stringify`, UTF-8) with `contentType: 'application/json'`
   * unless the send's options name another; otherwise exactly {@link Publisher.sendMessage}.
   * A value JSON cannot encode (`undefined`, a function, a symbol, a BigInt, a cycle) throws
   * `TypeError` at the call, before anything is sent; the error never quotes the value.
   */
  sendJson(exchange: string, routingKey: string, value: unknown, options?: SendOptions): Promise<void> {
    const body = encodeJson(value)
    return this.sendMessage(exchange, routingKey, body, jsonOptions(options))
  }

  /** {@link Publisher.sendJson} to the default exchange with the queue's name as routing key. */
  sendJsonToQueue(queueName: string, value: unknown, options?: SendOptions): Promise<void> {
    return this.sendJson('', queueName, value, options)
  }

  /**
   * Resolves when a new send would be published at once: the window has room and the socket is
   * writable. Await it before each send of a long stream to keep memory bounded.
   */
  waitForRoom(): Promise<void> {
    if (this.#hasRoom() || this.#state === 'stopping' || this.#state === 'stopped') return Promise.resolve()
    return this.#roomWaiters.wait()
  }

  /**
   * Waits (up to `timeout` ms) for every outstanding send to be settled, rejects what is left with
   * `ConnectionClosedError`, closes the channel and releases the connection. Idempotent.
   */
  stop(options: { timeout?: number } = {}): Promise<void> {
    const timeout = checkTimeout('timeout', options.timeout ?? 10_000)
    this.#stopping ??= this.#stop(timeout)
    return this.#stopping
  }

  /** `await using` calls the graceful {@link Publisher.stop}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }

  /** What `util.inspect` and `console.log` show: kind, state and counts, never message bodies. */
  [inspect.custom](): string {
    return `Publisher { kind: '${this.#kind}', state: '${this.#state}', unconfirmed: ${this.unconfirmed}, waiting: ${this.waiting} }`
  }

  async #start(): Promise<void> {
    this.#setState('starting')
    const placement = place(this.#ownConnection, 'publish')
    this.#placement = placement
    this.#connection = placement.connection
    if (!this.#loggerGiven) this.#logger = bindLogger(this.#connection.logger, publisherBindings)
    this.#tracing = tracingWanted(this.#tracingOption, this.#connection.tracing)
    try {
      // Tracing and metrics: the metrics are in place before the first confirm.
      await loadOtel()
      registerPublisher(this.#metrics)
      await this.#openSession(this.#stopStarting.signal)
    } catch (err) {
      unregisterPublisher(this.#metrics)
      await placement.release()
      this.#connection = undefined
      this.#starting = undefined
      if (this.#state === 'starting') this.#setState('new')
      this.#failWaiting(err instanceof LapinError ? err : new ConnectionClosedError('could not start', err))
      throw err
    }
    if (this.#state === 'starting') this.#setState('running')
    this.#pump()
  }

  async #stop(timeout: number): Promise<void> {
    const starting = this.#starting
    const deadline = Date.now() + timeout
    // Set before the first await: a send made after stop() is refused at once.
    this.#setState('stopping')
    if (starting) {
      // A start still waiting for the broker (down at start) gets the stop timeout if sends wait for
      // it, then is given up on: it could wait as long as the connection retries (forever with Infinity).
      await waitAtMost(starting, this.#waiting.length > 0 ? timeout : 0)
      this.#stopStarting.abort()
      await starting.catch(noop)
    }
    if (this.#waiting.length + this.#unconfirmed.size + this.#nackedAgain.length > 0) {
      await waitAtMost(this.#idleWaiters.wait(), Math.max(0, deadline - Date.now()))
    }
    const stopped = new ConnectionClosedError('publisher stopped before the broker confirmed the message')
    this.#failWaiting(stopped)
    for (const pending of this.#unconfirmed.takeAll()) settleSend(pending, stopped, this.#logger)
    for (const pending of this.#nackedAgain.splice(0)) {
      settleSend(pending, new PublishNackedError(pending.exchange, pending.routingKey), this.#logger)
    }
    this.#setState('stopped')
    unregisterPublisher(this.#metrics)
    this.#reopener.cancel()
    clearTimeout(this.#timer)
    this.#roomWaiters.wakeAll()
    const session = this.#session
    this.#session = undefined
    await session?.close()
    await this.#placement?.release()
  }

  /** Opens the confirm channel; `signal` (start only) ends the wait for the connection. */
  async #openSession(signal?: AbortSignal): Promise<void> {
    const connection = this.#connection
    if (!connection) throw new ConnectionClosedError('publisher is not started')
    const session = await connection.openSession(true, signal)
    if (this.#topology) {
      // Declared before the channel is used: no send goes out before what it needs exists.
      try {
        await declareTopology(session, this.#topology)
      } catch (err) {
        await session.close()
        throw err
      }
    }
    if (this.#state === 'stopped') {
      // A reopen that finished after stop() had closed the previous channel: nobody would close this one.
      await session.close()
      throw new ConnectionClosedError('publisher was stopped')
    }
    this.#session = session
    this.#writable = true
    this.#failoverNacks.channelOpened(
      Math.max(connection.recoveredAt ?? 0, this.#channelLostAt ?? 0) || undefined,
    )
    // Only the current channel's frames count: a replaced one may still answer, with tags of its own.
    session.listenForConfirms({
      onConfirm: (tag, multiple, nack) => {
        if (this.#session === session) this.#onConfirm(tag, multiple, nack)
      },
      onReturn: (message) => {
        if (this.#session === session) this.#onReturn(message)
      },
      onDrain: () => {
        if (this.#session !== session) return
        this.#writable = true
        this.#pump()
      },
    })
    session.onClose((error) => {
      if (!this.#replaced.has(session)) this.#onSessionClosed(session, error)
    })
  }

  /** Publishes waiting sends while the window has room and the socket takes more (stop() flushes them too). */
  #pump(): void {
    const session = this.#session
    const canPublish =
      session?.open && session !== this.#retiring && (this.#state === 'running' || this.#state === 'stopping')
    const connection = this.#connection
    // One clock read per batch: the sends written in one pump leave in the same turn.
    let now = 0
    while (canPublish && this.#writable && this.#unconfirmed.size < this.#window()) {
      const pending = this.#waiting.peek()
      if (!pending) break
      if (connection && !connection.exchangeKnown(pending.exchange)) {
        // Its exchange is checked first; the sends behind it keep their order.
        this.#exchangeChecks.check(connection, pending.exchange)
        break
      }
      this.#waiting.shift()
      let ok: boolean
      try {
        ok = session.publish(pending.exchange, pending.routingKey, pending.body, pending.options)
      } catch (err) {
        if (err instanceof ChannelClosingError) {
          // Nothing was sent: keep the send for the next channel.
          this.#waiting.unshift(pending)
          break
        }
        // Encoding failed: nothing was sent and no confirm slot was used.
        settleSend(pending, err as LapinError, this.#logger)
        continue
      }
      pending.sent = true
      if (now === 0) now = performance.now()
      pending.publishedAt = now
      this.#stats.published++
      if (this.#isolating > 0) this.#isolating--
      this.#unconfirmed.add(pending)
      if (!ok) this.#writable = false
    }
    if (this.#hasRoom()) this.#roomWaiters.wakeAll()
  }

  /** Sends in flight at once: one while the sends in doubt after an unexplained refusal go out alone. */
  #window(): number {
    return this.#isolating > 0 ? 1 : this.#maxInFlight
  }

  #hasRoom(): boolean {
    return (
      this.#waiting.length === 0 &&
      this.#nackedAgain.length === 0 &&
      this.#unconfirmed.size < this.#maxInFlight &&
      this.#writable
    )
  }

  #onConfirm(tag: number, multiple: boolean, nack: boolean): void {
    const covered = this.#unconfirmed.confirm(tag, multiple)
    const now = performance.now()
    for (const pending of covered) this.#stats.confirmLatency.record(now - pending.publishedAt)
    if (nack) this.#onNack(covered)
    else {
      this.#replacements = 0
      for (const pending of covered) {
        this.#failoverNacks.confirmed(pending)
        settleSend(pending, pending.returned, this.#logger)
      }
    }
    if (this.#retiring !== undefined && this.#unconfirmed.size === 0) this.#replaceChannel()
    this.#pump()
    this.#checkIdle()
  }

  /** Nacked sends fail, unless they look like a failover's artefact: then they go out again on a fresh channel. */
  #onNack(covered: PendingSend[]): void {
    const now = Date.now()
    const session = this.#session
    for (const pending of covered) {
      if (session !== undefined && this.#failoverNacks.sendAgain(pending, now)) {
        pending.nacked = true
        this.#nackedAgain.push(pending)
        if (this.#retiring === session) continue
        this.#retiring = session
        // Replaced once every send on it is answered, or after a second if some never are.
        setTimeout(() => {
          if (this.#retiring === session) this.#replaceChannel()
        }, 1_000).unref()
      } else settleSend(pending, new PublishNackedError(pending.exchange, pending.routingKey), this.#logger)
    }
  }

  /**
   * Gives up the channel being retired at once (its close handshake is not waited for: a channel in
   * that state may never answer it): the nacked sends go back to the head of the queue, a fresh
   * channel opens after a delay.
   */
  #replaceChannel(): void {
    const session = this.#retiring
    this.#retiring = undefined
    if (session === undefined || session !== this.#session) return
    this.#logger.info(
      { nacked: this.#nackedAgain.length, delay: replacementDelay(this.#replacements) },
      'lapinmq: sends nacked on a channel opened just after a failover; sending them again on a fresh channel',
    )
    this.#replaced.add(session)
    this.#onSessionClosed(session, channelReplaced())
    session.close().catch(noop)
  }

  #onReturn(message: ReturnedMessage): void {
    if (!this.#unconfirmed.markReturned(message))
      this.#logger.debug({}, 'lapinmq: basic.return for a send no longer awaited')
  }

  /** The channel closed, or was given up by #replaceChannel. */
  #onSessionClosed(session: ChannelSession, error: LapinError | undefined): void {
    const replaced = this.#replaced.has(session)
    if (this.#session === session) this.#session = undefined
    if (this.#retiring === session) this.#retiring = undefined
    const active = this.#state === 'starting' || this.#state === 'running' || this.#state === 'stopping'
    if (!replaced) this.#channelLostAt = Date.now()
    // What the broker refused fails with its reason; the other unconfirmed messages are in doubt:
    // their channel closed before their confirm. `error` is undefined when the whole connection went.
    const refusal = refusalOf(error)
    let refusals = refusal?.limit ?? 0
    let refused = 0
    const refusedExchanges = new Set<string>()
    const inDoubtSends: PendingSend[] = []
    for (const pending of this.#unconfirmed.takeAll()) {
      if (pending.returned) settleSend(pending, pending.returned, this.#logger)
      else if (refusal && refusals > 0 && refusal.matches(pending)) {
        refusals--
        refused++
        refusedExchanges.add(pending.exchange)
        settleSend(pending, refusal.error, this.#logger)
      } else inDoubtSends.push(pending)
    }
    if (refusal?.exchange) {
      for (const exchange of refusedExchanges) {
        // Deleted since its check: checked again before the next send. Internal: refused at once.
        if (refusal.exchange.missing) this.#connection?.forgetExchange(exchange)
        else this.#connection?.refuseExchange(exchange, refusal.error)
      }
    }
    // A channel error only a publish can cause, whose reason names no send in flight: with one
    // send in flight, that send is the refused one; with several, they go out again one at a time,
    // so that the refused one shows itself alone and the others are confirmed.
    const unexplained = error?.replyCode !== undefined && refused === 0
    if (unexplained && inDoubtSends.length === 1) {
      settleSend(inDoubtSends.pop() as PendingSend, error, this.#logger)
    }
    // Nacked sends go out again whatever `republish` says: a nacked message was not taken.
    const again: PendingSend[] = []
    for (const pending of this.#nackedAgain.splice(0)) {
      if (active) again.push(pending)
      else settleSend(pending, new PublishNackedError(pending.exchange, pending.routingKey), this.#logger)
    }
    for (const pending of inDoubtSends) {
      if (this.#republish && active) again.push(pending)
      else settleSend(pending, inDoubt(error), this.#logger)
    }
    this.#isolating = unexplained ? again.length : 0
    this.#stats.republished += again.length
    // Back at the head of the queue, in their order: their deadlines are the oldest.
    for (let i = again.length - 1; i >= 0; i--) this.#waiting.unshift(again[i] as PendingSend)
    this.#checkIdle()
    if (!active) return
    if (replaced) {
      this.#reopener.request(replacementDelay(this.#replacements++))
      return
    }
    this.#logger[closedWithConnection(error, this.#connection) ? 'info' : 'warn'](
      { code: error?.code, republish: again.length },
      'lapinmq publisher channel closed; reopening',
    )
    this.#reopener.request()
  }

  /** A reopen failed: retry, unless the connection is closed for good (then fail what waits). */
  #onReopenFailed(err: unknown): boolean {
    const error =
      err instanceof LapinError ? err : new ConnectionClosedError('could not reopen the channel', err)
    if (error.code !== 'CONNECTION_CLOSED') {
      // The broker refusing (the topology's declarations) is reported; the rest is a connection still recovering.
      if (error.replyCode !== undefined) emitError(this, this.#logger, error)
      else this.#logger.warn({ code: error.code }, 'lapinmq publisher could not reopen its channel; retrying')
      return true
    }
    this.#failWaiting(error)
    this.#checkIdle()
    emitError(this, this.#logger, error)
    return false
  }

  #setState(state: PublisherState): void {
    const previous = this.#state
    if (previous === state) return
    this.#state = state
    emitSafely(this, 'state', state, previous)
  }

  #failWaiting(error: LapinError): void {
    for (const pending of this.#waiting.drain()) settleSend(pending, error, this.#logger)
    if (this.#hasRoom()) this.#roomWaiters.wakeAll()
  }

  #armTimer(deadline: number): void {
    if (this.#timer || deadline === Number.POSITIVE_INFINITY) return
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, deadline - Date.now()))
    this.#timer.unref()
  }

  /** Rejects sends past their deadline, waiting or unconfirmed, then re-arms for the oldest left. */
  #expire(): void {
    this.#timer = undefined
    const now = Date.now()
    for (let p = this.#waiting.peek(); p && p.deadline <= now; p = this.#waiting.peek()) {
      this.#waiting.shift()
      settleSend(p, this.#expired(p), this.#logger)
    }
    this.#nackedAgain = this.#nackedAgain.filter((p) => {
      if (p.deadline > now) return true
      settleSend(p, this.#expired(p), this.#logger)
      return false
    })
    for (const pending of this.#unconfirmed.takeExpired(now)) {
      settleSend(pending, new ConfirmTimeoutError(this.#confirmTimeout, true), this.#logger)
    }
    if (this.#retiring !== undefined && this.#unconfirmed.size === 0) this.#replaceChannel()
    const next = Math.min(
      this.#waiting.peek()?.deadline ?? Number.POSITIVE_INFINITY,
      this.#unconfirmed.oldestDeadline ?? Number.POSITIVE_INFINITY,
    )
    if (next !== Number.POSITIVE_INFINITY) this.#armTimer(next)
    this.#pump()
    this.#checkIdle()
  }

  /** The error of a send past its deadline: a timeout, or the nack it got when it was nacked every time. */
  #expired(pending: PendingSend): LapinError {
    return pending.nacked
      ? new PublishNackedError(pending.exchange, pending.routingKey)
      : new ConfirmTimeoutError(this.#confirmTimeout, pending.sent)
  }

  #checkIdle(): void {
    if (this.#waiting.length + this.#unconfirmed.size + this.#nackedAgain.length === 0)
      this.#idleWaiters.wakeAll()
  }
}

const jsonContentType: SendOptions = Object.freeze({ contentType: 'application/json' })

/** @internal A send's options with the JSON content type, unless they name one. */
export function jsonOptions(options: SendOptions | undefined): SendOptions {
  if (options === undefined) return jsonContentType
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
  return options.contentType === undefined ? { ...options, contentType: 'application/json' } : options
}

/** Why a replaced channel's unanswered sends are in doubt. */
function channelReplaced(): LapinError {
  return new LapinError('CHANNEL_CLOSED', 'the channel was replaced: it nacked sends for a failover')
}

/** The error for a message whose channel closed before its confirm. */
function inDoubt(channelError: LapinError | undefined): LapinError {
  return channelError
    ? new LapinError('CHANNEL_CLOSED', 'channel closed before the broker confirmed the message', {
        cause: channelError,
      })
    : new ConnectionClosedError('connection lost before the broker confirmed the message')
}

/** What a publisher's log lines carry, with a logger that has `child()`. */
const publisherBindings = { lapinmq: 'publisher' }
