import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { inspect } from 'node:util'
import type { ChannelSession, Delivery } from '../amqp/channel-session.js'
import { backoffDelay } from '../connection/backoff.js'
import type { Connection } from '../connection/connection.js'
import { closedWithConnection } from '../connection/health.js'
import { type Placement, place } from '../connection/pool.js'
import { Reopener } from '../connection/reopener.js'
import { ConnectionClosedError, LapinError, toLapinError } from '../errors.js'
import { errorReason } from '../retry/headers.js'
import { RetryLadder } from '../retry/ladder.js'
import { Replier } from '../rpc/replier.js'
import { type ConsumerSource, registerConsumer, unregisterConsumer } from '../telemetry/metrics.js'
import { loadOtel } from '../telemetry/otel.js'
import { ConsumerCounters, type ConsumerStats } from '../telemetry/stats.js'
import { startProcessSpan, tracingWanted } from '../telemetry/tracing.js'
import { declareTopology } from '../topology/topology.js'
import { Fifo } from '../util/fifo.js'
import { bindLogger, componentLogger, type Logger } from '../util/logger.js'
import { emitError, emitSafely } from '../util/safe-emit.js'
import { isThenable } from '../util/thenable.js'
import { checkTimeout, maxTimerMs } from '../util/validate.js'
import { unlessAborted, Waiters, waitAtMost } from '../util/waiters.js'
import { AckBatcher, type SettleOutcome } from './ack-batcher.js'
import { Failures } from './failures.js'
import { Message, MessageStatus, settleByStatus } from './message.js'
import {
  type ConsumerOptions,
  type ResolvedConsumerOptions,
  resolveConsumerOptions,
  type TaskFunction,
  type TaskTimeoutInfo,
} from './options.js'
import { type ResubscribeHost, Resubscriber } from './resubscribe.js'
import type { InvalidMessageInfo, InvalidMessageIssue, StandardSchemaV1 } from './schema.js'
import { consumerTimeoutError, settleTimedOut, TaskDeadline } from './task-deadline.js'
import { asUnavailable, noAnswer, type QueueUnavailableInfo } from './unavailable.js'
import { type OnInvalid, validatingTask } from './validating-task.js'
import { WorkerPool } from './workers/pool.js'

/** Typed events of a {@link Consumer}. */
export interface ConsumerEvents {
  /** Something failed that no promise reports (channel lost, consumer cancelled by the broker). */
  error: [error: LapinError]
  /** A task ran past `taskTimeout`: its message was settled per `onTaskTimeout`, its late result will be ignored. */
  taskTimeout: [info: TaskTimeoutInfo]
  /**
   * A body was not JSON, or the `schema` refused it: the message was rejected without requeue
   * (dead-lettered when the queue has a dead-letter exchange) and its task not called. The info
   * holds the issues and the delivery's identity, never the body. With no listener, a warning goes
   * to the logger (the issues' paths, not their messages).
   */
  invalidMessage: [info: InvalidMessageInfo]
  /**
   * The queue exists but cannot be consumed now: a classic queue whose node is down or cut off
   * (`error.code` is `QUEUE_UNAVAILABLE`). The consumer tries again after `delay` ms (backoff up
   * to 5 s) and resumes once the node is back; reported on every attempt. Without a listener, a
   * warning goes to the logger at the first attempt.
   */
  queueUnavailable: [info: QueueUnavailableInfo]
}

type State = 'new' | 'starting' | 'running' | 'stopping' | 'stopped'

/** Between attempts to consume again: a queue whose node is back is consumed again within 5 s. */
const restartBackoff = { maxDelay: 5_000 }

const noop = (): void => {}

/**
 * Consumes a queue with manual acks, running up to `concurrency` tasks at once. Each task's
 * {@link MessageStatus} decides the ack; a throw, a rejection or an unknown value means retry later.
 *
 * @example
 * ```ts
 * const consumer = new Consumer({
 *   queueName: 'task_queue',
 *   concurrency: 3,
 *   taskFunction: async (message) => {
 *     await handle(message.body.toString())
 *     return MessageStatus.SUCCESS
 *   },
 * })
 * await consumer.start()
 * await waitForSigterm()
 * await consumer.stop()
 * ```
 */
export class Consumer<T = unknown> extends EventEmitter<ConsumerEvents> {
  /** Kept without `T`: a `Consumer<T>` is then a `Consumer` (in a list of them, say). */
  readonly #options: ConsumerOptions
  readonly #resolved: ResolvedConsumerOptions
  readonly #concurrency: number
  readonly #prefetch: number
  readonly #bindingKeys: readonly string[]
  readonly #bindingArguments: Record<string, unknown> | undefined
  /** The user's taskFunction, or (worker mode) the hand-off to the pool. */
  readonly #task: TaskFunction
  /** Worker mode: the pool, running from start() to stop(). */
  readonly #pool: WorkerPool | undefined
  /** Deadlines of running tasks (none when `taskTimeout` is 0). */
  readonly #deadline: TaskDeadline<Message> | undefined
  /** The retry ladder (`retry`), or none. */
  readonly #ladder: RetryLadder | undefined
  /** Where failed messages go: the ladder, or back to the queue after a backoff. */
  readonly #failures: Failures
  /** Subscribes again past messages held for their requeue backoff. */
  readonly #resubscriber: Resubscriber
  /** Sends `message.reply()`s, on the consumer's connection. */
  readonly #replier: Replier
  #redeclaringLadder = false
  #connection: Connection | undefined
  /** Where start() placed the channel, given back at stop(). */
  #placement: Placement | undefined
  #logger: Logger
  #state: State = 'new'
  #starting: Promise<void> | undefined
  #stopping: Promise<void> | undefined
  #session: ChannelSession | undefined
  #consumerTag: string | undefined
  #queueName: string
  #running = 0
  #unsettled = 0
  /** Settles the current channel's deliveries (acks batched per turn). */
  #acks: AckBatcher | undefined
  #staleSettles = 0
  /** Deliveries are traced (decided at start, from the option and the connection's). */
  #tracing = false
  readonly #backlog = new Fifo<Message>()
  readonly #idleWaiters = new Waiters()
  /** Aborted by stop(): a start still waiting for the connection gives up. */
  readonly #stopStarting = new AbortController()
  readonly #reopener = new Reopener({
    task: () => this.#setup(),
    shouldRun: () => this.#state === 'running',
    onFailure: (err, attempt, delay) => this.#onRestartFailed(err, attempt, delay),
    backoff: restartBackoff,
  })
  readonly #stats = new ConsumerCounters()
  /** What OpenTelemetry's metrics read of this consumer. */
  readonly #metrics: ConsumerSource = {
    counters: this.#stats,
    staleSettles: () => this.#staleSettles,
    running: () => this.#running,
    unsettled: () => this.#unsettled,
    queue: () => this.#queueName,
    connection: () => this.#connection?.name ?? '',
  }

  constructor(options: ConsumerOptions<T>) {
    super()
    const resolved = resolveConsumerOptions(options)
    const { concurrency, prefetch, bindingKeys } = resolved
    this.#resolved = resolved
    this.#task = options.taskFunction as TaskFunction
    const { schema } = options
    if (schema) {
      const onInvalid: OnInvalid = (message, reason, issues) => this.#onInvalid(message, reason, issues)
      this.#task = validatingTask(schema as StandardSchemaV1, this.#task, onInvalid)
    }
    if (resolved.workers) {
      const onError = (error: LapinError): void => emitError(this, this.#logger, error)
      const pool = new WorkerPool({ ...resolved.workers, onError })
      this.#pool = pool
      this.#task = (message) => pool.run(message) as Promise<MessageStatus>
    }
    if (resolved.taskTimeout > 0) {
      this.#deadline = new TaskDeadline(resolved.taskTimeout, (message) => this.#onTaskTimeout(message))
    }
    this.#ladder = resolved.retry && new RetryLadder(resolved.retry)
    this.#failures = new Failures({
      queue: () => this.#queueName,
      ladder: this.#ladder,
      backoff: resolved.requeueBackoff,
      logger: () => this.#logger,
      onHeld: (message) => this.#resubscriber.held(message),
      // One fewer held: the consumer may subscribe again if it had stopped at the limit.
      onReleased: () => this.#resubscriber.check(),
      onLadderQueueMissing: () => this.#redeclareLadder(),
      onMoved: (result) => this.#stats.moved(result),
    })
    // Never on a stream (it would start again at its offset, not where it was), a
    // single-active-consumer queue (subscribing again would hand the queue to another consumer), or
    // for an exclusive consumer (it would have to cancel first: an auto-delete queue, such as a
    // temporary one, would be deleted with its messages).
    const resubscribes =
      resolved.queueArgs?.['x-queue-type'] !== 'stream' &&
      options.streamOffset === undefined &&
      resolved.queueArgs?.['x-single-active-consumer'] !== true &&
      options.exclusive !== true
    this.#resubscriber = new Resubscriber(this.#resubscribeHost(), prefetch, resubscribes)
    this.#replier = new Replier(
      () => this.#connection,
      () => this.#logger,
      prefetch,
    )
    this.#options = options as ConsumerOptions
    this.#concurrency = concurrency
    this.#prefetch = prefetch
    this.#bindingKeys = bindingKeys
    this.#bindingArguments = resolved.bindingArguments
    this.#queueName = options.queueName
    this.#logger = componentLogger(
      options.logger,
      options.connection?.logger,
      consumerBindings(options.queueName),
    )
  }

  /** The queue consumed; for `queueName: ''`, the server-given name once started. */
  get queueName(): string {
    return this.#queueName
  }

  /** Tasks running now (never more than `concurrency`). */
  get running(): number {
    return this.#running
  }

  /**
   * Delivered messages not yet settled: at most `prefetch`, plus failed messages held for their
   * requeue backoff (at most `max(prefetch, 20)` more).
   */
  get unsettled(): number {
    return this.#unsettled
  }

  /**
   * Failed messages held unacked for their requeue backoff. With `retry`, only those whose copy
   * the broker refused or lost (they go back to the queue after the backoff).
   */
  get held(): number {
    return this.#failures.held
  }

  /** Settles dropped because the delivering channel had closed (the broker requeued those messages). */
  get staleSettles(): number {
    return this.#staleSettles
  }

  /** What this consumer did since it was made: counters, and the task duration's percentiles. */
  stats(): ConsumerStats {
    return this.#stats.snapshot(this.#staleSettles, this.#running, this.#unsettled)
  }

  /**
   * Opens a channel, sets prefetch, declares the `topology` (if any), declares (or checks) and binds
   * the queue, and starts consuming. Idempotent.
   */
  start(): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'stopped') {
      return Promise.reject(new ConnectionClosedError('consumer was stopped'))
    }
    this.#starting ??= this.#start()
    return this.#starting
  }

  /**
   * Stops receiving, requeues prefetched messages whose task has not started, waits (up to
   * `timeout` ms) for running tasks and for messages handled via callback to be settled, then closes
   * the channel, which makes sure every ack sent has reached the broker. Idempotent.
   */
  stop(options: { timeout?: number } = {}): Promise<void> {
    const timeout = checkTimeout('timeout', options.timeout ?? 30_000)
    this.#stopping ??= this.#stop(timeout)
    return this.#stopping
  }

  /** `await using` calls the graceful {@link Consumer.stop}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }

  /** What `util.inspect` and `console.log` show: queue, state and counts, never message bodies. */
  [inspect.custom](): string {
    return `Consumer { queueName: '${this.#queueName}', state: '${this.#state}', running: ${this.#running}, unsettled: ${this.#unsettled} }`
  }

  /** A delivery of `session` was settled (sent or dropped): one fewer to wait for, if it is the current channel's. */
  #onSettled(session: ChannelSession, outcome: SettleOutcome): void {
    this.#stats.settled(outcome)
    if (this.#session === session) this.#unsettled--
    this.#checkIdle()
  }

  #onStaleSettles(count: number): void {
    this.#staleSettles += count
    this.#logger.debug({ count }, 'lapinmq: settle dropped, its channel closed')
  }

  async #start(): Promise<void> {
    this.#state = 'starting'
    const placement = place(this.#options.connection, 'consume')
    this.#placement = placement
    this.#connection = placement.connection
    if (!this.#options.logger)
      this.#logger = bindLogger(this.#connection.logger, consumerBindings(this.#queueName))
    this.#tracing = tracingWanted(this.#resolved.tracing, this.#connection.tracing)
    try {
      // Tracing and metrics: the metrics are in place before the first delivery's task ends.
      await loadOtel()
      registerConsumer(this.#metrics)
      await this.#pool?.start()
      this.#deadline?.start()
      // Before the first delivery: a failure may need to move its message at once.
      // On the consumer's own connection (a pool's too), else the shared publishing one.
      await this.#ladder?.start(this.#options.connection && this.#connection, this.#logger, this.#prefetch)
      await this.#setupWhileUnavailable(this.#stopStarting.signal)
    } catch (err) {
      unregisterConsumer(this.#metrics)
      const session = this.#session
      this.#session = undefined
      await session?.close()
      this.#deadline?.stop()
      await this.#pool?.stop()
      await this.#ladder?.stop(0)
      await placement.release()
      this.#connection = undefined
      this.#starting = undefined
      if (this.#state === 'starting') this.#state = 'new'
      throw err instanceof LapinError ? err : toLapinError(err, 'could not start the consumer')
    }
    if (this.#state === 'starting') this.#state = 'running'
    // A message that failed during the start is held: the messages behind it may need room.
    this.#resubscriber.check()
  }

  /**
   * The first setup: a queue that is unavailable (its node down, no majority) is reported and tried
   * again with backoff, as after a loss, until it can be consumed or stop() is called.
   */
  async #setupWhileUnavailable(signal: AbortSignal): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#setup(signal)
        return
      } catch (err) {
        const unavailable = err instanceof LapinError ? asUnavailable(err, this.#queueName) : undefined
        if (!unavailable) throw err
        const delay = backoffDelay(attempt, restartBackoff)
        this.#reportUnavailable(unavailable, attempt, delay)
        try {
          await sleep(delay, undefined, { signal })
        } catch {
          throw new ConnectionClosedError('stopped while the queue was unavailable', unavailable)
        }
      }
    }
  }

  /**
   * Channel, prefetch, declare, bind, consume: everything a (re)start does. `signal` (start only)
   * ends the wait for the connection.
   */
  async #setup(signal?: AbortSignal): Promise<void> {
    const connection = this.#connection
    if (!connection) throw new ConnectionClosedError('consumer is not started')
    const session = await connection.openSession(false, signal)
    if (this.#state !== 'starting' && this.#state !== 'running') {
      // Stopped while the channel opened: nobody would close it.
      await session.close()
      throw new ConnectionClosedError('consumer was stopped')
    }
    this.#session = session
    const acks = new AckBatcher(
      session,
      (count) => this.#onStaleSettles(count),
      (outcome) => this.#onSettled(session, outcome),
    )
    this.#acks = acks
    this.#unsettled = 0
    session.onClose((error) => this.#onSessionClosed(session, error))
    // A queue that cannot answer (a quorum queue without a majority of its nodes) leaves a declare or
    // a consume without a reply: past the connection's timeout, the queue is taken as unavailable.
    const timeout = connection.answerTimeout
    const answered =
      timeout > 0 && timeout !== Number.POSITIVE_INFINITY ? AbortSignal.timeout(timeout) : undefined
    try {
      await unlessAborted(this.#subscribeOn(session, acks), answered, () =>
        noAnswer(this.#queueName, timeout),
      )
    } catch (err) {
      if (err instanceof LapinError && err.code === 'QUEUE_UNAVAILABLE' && this.#session === session) {
        // Given up on: its close (which may not be answered either) is no loss to recover from.
        this.#session = undefined
        session.close().catch(noop)
      }
      throw err
    }
  }

  /** Prefetch, declarations, bindings and basic.consume on a new channel. */
  async #subscribeOn(session: ChannelSession, acks: AckBatcher): Promise<void> {
    await session.prefetch(this.#prefetch)
    const { topology, queueArgs, retry } = this.#resolved
    // Before the queue: it may be bound to an exchange declared here.
    if (topology) await declareTopology(session, topology)
    // The ladder's queues name the work queue only as a routing key: they may come first.
    if (retry) await declareTopology(session, retry.topology)
    const temporary = this.#options.queueName === ''
    this.#queueName =
      this.#options.declareQueue === false
        ? (await session.checkQueue(this.#options.queueName)).queue
        : await session.assertQueue(
            this.#options.queueName,
            temporary
              ? { exclusive: true, autoDelete: true, durable: false, arguments: queueArgs }
              : { durable: true, arguments: queueArgs },
          )
    const { exchange, exchangeType } = this.#options
    if (exchange !== undefined && exchangeType !== undefined) {
      await session.assertExchange(exchange, exchangeType, {
        durable: true,
        autoDelete: false,
        internal: false,
      })
    }
    if (exchange !== undefined) {
      for (const key of this.#bindingKeys) {
        await session.bindQueue(this.#queueName, exchange, key, this.#bindingArguments)
      }
    }
    const tag = await this.#subscribe(session, acks)
    if (this.#session !== session) return // given up on while it waited: the broker cancels it with the channel
    this.#consumerTag = tag
    this.#resubscriber.check()
  }

  /** `basic.consume` on the queue: the consumer tag. */
  #subscribe(session: ChannelSession, acks: AckBatcher): Promise<string> {
    const { consume } = this.#resolved
    const { consumerTagPrefix } = this.#options
    const tag = consumerTagPrefix === undefined ? undefined : `${consumerTagPrefix}${randomUUID()}`
    return session.consume(
      this.#queueName,
      (delivery) => this.#onDelivery(session, acks, delivery),
      tag === undefined ? consume : { ...consume, consumerTag: tag },
    )
  }

  /** What the resubscriber sees of this consumer. */
  #resubscribeHost(): ResubscribeHost {
    return {
      current: () => {
        const session = this.#session
        const acks = this.#acks
        const tag = this.#consumerTag
        if (this.#state !== 'running' || !session || !acks || tag === undefined) return undefined
        return { session, acks, tag }
      },
      subscribe: (session, acks) => this.#subscribe(session, acks),
      adopt: (session, tag) => {
        if (this.#session !== session || this.#state !== 'running') return false
        this.#consumerTag = tag
        return true
      },
      held: () => this.#failures.held,
      unsettled: () => this.#unsettled,
      queue: () => this.#queueName,
      logger: () => this.#logger,
    }
  }

  /** A ladder queue was deleted under the consumer: declared again on its channel (once at a time). */
  #redeclareLadder(): void {
    const session = this.#session
    const retry = this.#resolved.retry
    if (this.#redeclaringLadder || session === undefined || retry === undefined) return
    this.#redeclaringLadder = true
    declareTopology(session, retry.topology)
      .then(
        () =>
          this.#logger.info({ queue: this.#queueName }, 'lapinmq: declared the retry ladder queues again'),
        (err: LapinError) => emitError(this, this.#logger, err),
      )
      .finally(() => {
        this.#redeclaringLadder = false
      })
  }

  #onDelivery(session: ChannelSession, acks: AckBatcher, delivery: Delivery | null): void {
    if (delivery === null) {
      // The broker cancelled us (queue deleted, or a quorum queue's leader moved): report it, and
      // start over on a new channel, which declares the queue again.
      this.#consumerTag = undefined
      const text = `the broker cancelled the consumer of queue '${this.#queueName}' (queue deleted, or its node went down?); restarting it`
      emitError(this, this.#logger, new LapinError('CONSUMER_CANCELLED', text))
      // Acks already decided still count: they leave before the close.
      acks.flush()
      session.close().catch(noop)
      return
    }
    const ladder = this.#ladder
    const headers = delivery.properties.headers
    const attempt =
      headers === undefined ? 1 : ladder ? ladder.failuresOf(headers) + 1 : deliveryCount(headers) + 1
    const message = Message.from(delivery, acks, this.#failures, this.#replier, attempt)
    if (this.#tracing) {
      const temporary = this.#options.queueName === ''
      const trace = startProcessSpan(delivery, this.#queueName, this.#connection?.node, temporary)
      if (trace !== undefined) message.traced(trace)
    }
    this.#stats.delivered++
    if (delivery.redelivered) this.#stats.redelivered++
    acks.delivered(delivery.deliveryTag)
    this.#resubscriber.delivered()
    this.#unsettled++
    if (this.#state === 'stopping') {
      // Arrived after we asked to stop: give it back untouched.
      message.settleAs('requeue')
    } else if (this.#running < this.#concurrency) {
      this.#run(message)
    } else {
      this.#backlog.push(message)
    }
  }

  /**
   * Runs `first`, then backlog messages, on one slot. Synchronous while tasks return their status
   * directly: no promise, async frame or microtask per message, which would be the consumer's
   * largest allocation in a pipeline. A task that returns a promise goes on in #await.
   */
  #run(first: Message): void {
    this.#running++
    let message: Message | undefined = first
    // One clock read per task: a task that returns its status ends when the next one starts.
    let started = performance.now()
    while (message) {
      let status: unknown
      const trace = message.trace
      try {
        // In the message's span: what the task publishes is its child.
        status = trace === undefined ? this.#task(message) : trace.run(this.#task, message)
      } catch (err) {
        status = taskFailed(message, err)
      }
      if (isThenable(status)) {
        this.#await(message, status, started).catch(noop)
        return
      }
      const ended = performance.now()
      this.#stats.taskDuration.record(ended - started)
      started = ended
      settleByStatus(message, status)
      message = this.#state === 'stopping' ? undefined : this.#backlog.shift()
    }
    this.#freeSlot()
  }

  /** A task that returned a promise: tracked for `taskTimeout`, then settled; its slot goes on. */
  async #await(message: Message, result: PromiseLike<unknown>, started: number): Promise<void> {
    const deadline = this.#deadline
    deadline?.track(message)
    let status: unknown
    try {
      status = await result
    } catch (err) {
      status = taskFailed(message, err)
    }
    this.#stats.taskDuration.record(performance.now() - started)
    // Timed out: the message is settled, the slot freed, and this late result is ignored.
    if (deadline && !deadline.untrack(message)) return
    settleByStatus(message, status)
    this.#freeSlot()
  }

  /** A slot's task is done (or timed out): the next backlog message runs on it, if any. */
  #freeSlot(): void {
    this.#running--
    const next = this.#state === 'stopping' ? undefined : this.#backlog.shift()
    if (next) this.#run(next)
    else this.#checkIdle()
  }

  #onSessionClosed(session: ChannelSession, error: LapinError | undefined): void {
    if (this.#session !== session) return
    this.#session = undefined
    this.#consumerTag = undefined
    this.#resubscriber.reset()
    // Its unsettled messages are back in the queue; settles for them will be dropped.
    for (const message of this.#backlog.drain()) message.dropped()
    this.#failures.forget()
    this.#unsettled = 0
    this.#checkIdle()
    if (this.#state !== 'running') return
    const timedOut = consumerTimeoutError(error)
    if (timedOut) emitError(this, this.#logger, timedOut)
    const level = closedWithConnection(error, this.#connection) ? 'info' : 'warn'
    this.#logger[level]({ code: error?.code }, 'lapinmq consumer channel closed; reopening')
    this.#reopener.request()
  }

  /**
   * A restart failed. The broker refusing (404 on a missing exchange, 406 on other queue
   * arguments...) is reported and retried with backoff; a lost connection is retried quietly
   * (the next attempt waits for it); a connection closed for good ends the consumer's recovery.
   */
  #onRestartFailed(err: unknown, attempt: number, delay: number): boolean {
    const error = err instanceof LapinError ? err : toLapinError(err, 'consumer could not restart')
    const unavailable = asUnavailable(error, this.#queueName)
    if (unavailable) {
      this.#reportUnavailable(unavailable, attempt, delay)
      return true
    }
    if (error.code === 'CONNECTION_CLOSED' || error.replyCode !== undefined)
      emitError(this, this.#logger, error)
    // A restart cut short by stop() (its connection closed after it) is no trouble.
    else
      this.#logger[this.#state === 'running' ? 'warn' : 'debug'](
        { code: error.code },
        'lapinmq consumer could not restart; retrying',
      )
    return error.code !== 'CONNECTION_CLOSED'
  }

  /** The queue could not be consumed (attempt `attempt`, from 0): the event, and a warning at the first. */
  #reportUnavailable(error: LapinError, attempt: number, delay: number): void {
    const info: QueueUnavailableInfo = { queue: this.#queueName, error, attempt: attempt + 1, delay }
    if (this.listenerCount('queueUnavailable') > 0) emitSafely(this, 'queueUnavailable', info)
    if (attempt === 0) {
      this.#logger.warn(
        { queue: info.queue, delay },
        'lapinmq: queue unavailable (its node is down?); consuming again after a delay',
      )
    } else
      this.#logger.debug(
        { queue: info.queue, attempt: info.attempt, delay },
        'lapinmq: queue still unavailable',
      )
  }

  async #stop(timeout: number): Promise<void> {
    const deadline = Date.now() + timeout
    const starting = this.#starting
    this.#state = 'stopping'
    // A start still waiting for the broker (down at start) has nothing to finish: it gives up at
    // once rather than after every retry of the connection.
    this.#stopStarting.abort()
    if (starting) await starting.catch(noop)
    // A re-subscribe in flight ends first: it cancels its new subscription itself, the old one is ours.
    const resubscribing = this.#resubscriber.inFlight
    if (resubscribing) await waitAtMost(resubscribing, timeout)
    const session = this.#session
    if (session?.open) {
      if (this.#consumerTag !== undefined) {
        try {
          await session.cancel(this.#consumerTag)
        } catch {
          // Channel gone: the broker requeues everything unacked.
        }
      }
      for (const message of this.#backlog.drain()) message.settleAs('requeue')
      this.#failures.releaseAll()
      if (this.#running > 0 || this.#unsettled > 0) await waitAtMost(this.#idleWaiters.wait(), timeout)
    }
    // Moves still unconfirmed after the timeout are given up: their originals are requeued.
    await this.#ladder?.stop(0)
    // Replies sent by tasks that did not await them get what is left of the timeout.
    await this.#replier.stop(Math.max(0, Math.min(deadline - Date.now(), maxTimerMs)))
    // Workers still busy after the timeout are terminated (their messages requeued).
    this.#deadline?.stop()
    await this.#pool?.stop()
    this.#state = 'stopped'
    unregisterConsumer(this.#metrics)
    this.#reopener.cancel()
    this.#session = undefined
    this.#acks?.flush()
    // A graceful close returns only after the broker processed every frame before it: acks included.
    await session?.close()
    await this.#placement?.release()
  }

  /** Reports a message refused before its task: the event, or (no listener) a warning without the body. */
  #onInvalid(
    message: Message,
    reason: InvalidMessageInfo['reason'],
    issues: readonly InvalidMessageIssue[],
  ): void {
    const info: InvalidMessageInfo = {
      reason,
      issues,
      queue: this.#queueName,
      exchange: message.exchange,
      routingKey: message.routingKey,
      messageId: message.properties.messageId,
      deliveryTag: message.deliveryTag,
      redelivered: message.redelivered,
    }
    if (this.listenerCount('invalidMessage') > 0) {
      emitSafely(this, 'invalidMessage', info)
      return
    }
    // The count only: an issue's message may quote the value it refused, and its path may be made
    // of the body's own keys (a record keyed by e-mail addresses).
    const { queue, routingKey, messageId, deliveryTag } = info
    const fields = { reason, queue, routingKey, messageId, deliveryTag, issues: issues.length }
    this.#logger.warn(fields, 'lapinmq: invalid message rejected without requeue')
  }

  /** A task ran past `taskTimeout`: settle its message, free its slot, report it. */
  #onTaskTimeout(message: Message): void {
    const info = settleTimedOut(message, this.#resolved, this.#pool?.abort(message) ?? false)
    this.#logger.warn(info, 'lapinmq: task timed out; its late result will be ignored')
    this.emit('taskTimeout', info)
    // The slot is free: the next prefetched message starts (a main-thread task runs on, ignored).
    this.#freeSlot()
  }

  #checkIdle(): void {
    if (this.#running === 0 && this.#unsettled === 0) this.#idleWaiters.wakeAll()
  }
}

/** A task threw or its promise rejected: the message is retried later, the error its reason. */
function taskFailed(message: Message, err: unknown): MessageStatus {
  message.setFailureReason(errorReason(err), 'warn')
  return MessageStatus.FAIL_RETRY_LATER
}

/** A quorum queue's count of the message's earlier deliveries (`x-delivery-count`), else 0. */
function deliveryCount(headers: Record<string, unknown>): number {
  const count = headers['x-delivery-count']
  return typeof count === 'number' && count > 0 && Number.isSafeInteger(count) ? count : 0
}

/** What a consumer's log lines carry, with a logger that has `child()` (a server-named queue: none yet). */
function consumerBindings(queue: string): Record<string, unknown> {
  return queue === '' ? { lapinmq: 'consumer' } : { lapinmq: 'consumer', queue }
}
