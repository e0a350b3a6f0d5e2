// A confirm-tied pipeline A → B for the cluster tests: a source fills queue A with `total`
// persistent messages (ids `c-0` …), a consumer of A forwards each one to B and acks it only from
// the forward's confirm, a consumer of B takes them. Every step goes into the Ledger; the counters
// and times the tests report on are public fields.
//
//   const pipeline = new ConfirmTiedPipeline({ ledger, queueA, queueB, total, source, forward, consume, … })
//   await pipeline.start()
//   const feeding = pipeline.feed()
//   … faults …
//   await feeding
//   const drained = await pipeline.drained(90_000)
//   await pipeline.stop()
//   const { leftA, leftB } = await pipeline.drainQueues(liveNode.url)
//   pipeline.assertComplete(ledger.print('…'), leftA, leftB)
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  type Connection,
  type ConnectionPool,
  Consumer,
  type LapinError,
  MessageStatus,
  Publisher,
} from 'lapinmq'
import { drainPrivateQueue, eventually, outcomeOf } from './fault-traffic.ts'
import type { Ledger, LedgerReport } from './ledger.ts'

export interface ConfirmTiedPipelineOptions {
  ledger: Ledger
  queueA: string
  queueB: string
  /** Messages the source sends to A. */
  total: number
  /** The source's connection (it only fills A). */
  source: Connection | ConnectionPool
  /** The forwarder's (B's publisher's) connection. */
  forward: Connection | ConnectionPool
  /** The consumers' connection (A's and B's). */
  consume: Connection | ConnectionPool
  /** Tasks of each consumer at a time. */
  concurrency: number
  /** Prefetch of each consumer. */
  prefetch: number
  /** The forwarder's window: never more B publishes unconfirmed than this. */
  forwardWindow: number
  /** The A task's work in ms. */
  workMs: number
  /** The A task's work in ms while {@link ConfirmTiedPipeline.slow} is set (a fault finds the stream flowing). */
  slowMs: number
}

export class ConfirmTiedPipeline {
  readonly source: Publisher
  readonly forwarder: Publisher
  readonly consumerA: Consumer
  readonly consumerB: Consumer
  /** While set, each A task works `slowMs` instead of `workMs`. */
  slow = false
  /** B publishes made. */
  forwards = 0
  /** B publishes not settled yet. */
  forwardsPending = 0
  /** A messages acked (their B publish confirmed). */
  acked = 0
  /** Source sends settled, either way. */
  sourceSettled = 0
  /** Failed B publishes, by error code (each A message went back to A). */
  readonly forwardFailures = new Map<string, number>()
  /** When each B publish was confirmed (performance.now()). */
  readonly forwardConfirmedAt: number[] = []
  /** When each A delivery reached its task (performance.now()). */
  readonly deliveryAAt: number[] = []
  /** Ids delivered from B. */
  readonly deliveredB = new Set<string>()
  /** Errors the consumers emitted. */
  readonly consumerErrors: LapinError[] = []
  readonly #options: ConfirmTiedPipelineOptions

  constructor(options: ConfirmTiedPipelineOptions) {
    this.#options = options
    const { ledger, queueA, queueB, concurrency, prefetch } = options
    this.source = new Publisher({ kind: 'async', connection: options.source, maxInFlight: 500 })
    this.forwarder = new Publisher({
      kind: 'async',
      connection: options.forward,
      maxInFlight: options.forwardWindow,
    })
    const forwarder = this.forwarder
    this.consumerA = new Consumer({
      queueName: queueA,
      declareQueue: false,
      concurrency,
      prefetch,
      connection: options.consume,
      taskFunction: async (message) => {
        this.deliveryAAt.push(performance.now())
        const id = String(message.properties.messageId)
        await sleep(this.slow ? options.slowMs : options.workMs)
        await forwarder.waitForRoom()
        this.forwards++
        this.forwardsPending++
        void forwarder.sendMessageToQueue(queueB, message.body, {
          messageId: id,
          persistent: true,
          callbacks: {
            ackCallback: () => {
              this.forwardsPending--
              this.forwardConfirmedAt.push(performance.now())
              ledger.confirmedDownstream(id, queueB)
              message.ack()
              ledger.ackedSource(id)
              this.acked++
            },
            nackCallback: (error) => {
              this.forwardsPending--
              this.forwardFailures.set(error.code, (this.forwardFailures.get(error.code) ?? 0) + 1)
              message.rejectRetry()
            },
          },
        })
        return MessageStatus.HANDLED_VIA_CALLBACK
      },
    })
    this.consumerB = new Consumer({
      queueName: queueB,
      declareQueue: false,
      concurrency,
      prefetch,
      connection: options.consume,
      taskFunction: (message) => {
        const id = String(message.properties.messageId)
        ledger.delivered(id, { redelivered: message.redelivered, queue: queueB })
        this.deliveredB.add(id)
        return MessageStatus.SUCCESS
      },
    })
    this.consumerA.on('error', (e) => this.consumerErrors.push(e))
    this.consumerB.on('error', (e) => this.consumerErrors.push(e))
  }

  /** Starts the source, the forwarder and both consumers together. */
  async start(): Promise<void> {
    const { source, forwarder, consumerA, consumerB } = this
    await Promise.all([source.start(), forwarder.start(), consumerA.start(), consumerB.start()])
  }

  /** Sends the `total` messages to A (each outcome into the ledger); resolves once all are sent. */
  async feed(): Promise<void> {
    const { ledger, queueA, total } = this.#options
    for (let i = 0; i < total; i++) {
      await this.source.waitForRoom()
      const id = `c-${i}`
      ledger.attempt(id)
      this.source.sendMessageToQueue(queueA, id, { messageId: id, persistent: true }).then(
        () => {
          this.sourceSettled++
          ledger.outcome(id, 'confirmed')
        },
        (err: unknown) => {
          this.sourceSettled++
          ledger.outcome(id, outcomeOf(err))
        },
      )
    }
  }

  /** Waits until every message reached B, every send settled and both consumers are idle. */
  drained(timeoutMs: number): Promise<boolean> {
    const { total } = this.#options
    return eventually(
      () =>
        this.deliveredB.size === total &&
        this.sourceSettled === total &&
        this.forwardsPending === 0 &&
        this.consumerA.unsettled === 0 &&
        this.consumerA.running === 0 &&
        this.consumerB.unsettled === 0 &&
        this.consumerB.running === 0,
      timeoutMs,
    )
  }

  /** Where the pipeline stands, for a failed `drained`. */
  describe(): string {
    return (
      `B ${this.deliveredB.size}/${this.#options.total}, source settled ${this.sourceSettled}, ` +
      `forwards pending ${this.forwardsPending}, A unsettled ${this.consumerA.unsettled}, B unsettled ${this.consumerB.unsettled}`
    )
  }

  /** Failed forwards as `CODE n, …`, or `none`. */
  describeFailures(): string {
    return [...this.forwardFailures].map(([c, n]) => `${c} ${n}`).join(', ') || 'none'
  }

  /** Stops the consumers, then the publishers. */
  async stop(): Promise<void> {
    await Promise.all([this.consumerA.stop(), this.consumerB.stop()])
    await Promise.all([this.source.stop(), this.forwarder.stop()])
  }

  /** Stops everything whatever happened (for a `finally`). */
  async stopQuietly(): Promise<void> {
    const { source, forwarder, consumerA, consumerB } = this
    await Promise.allSettled([consumerA.stop(), consumerB.stop(), source.stop(), forwarder.stop()])
  }

  /** Takes what is left in A and B through the node at `url` and gives it to the ledger. */
  async drainQueues(url: string): Promise<{ leftA: string[]; leftB: string[] }> {
    const { ledger, queueA, queueB } = this.#options
    const leftA = await drainPrivateQueue(url, queueA)
    const leftB = await drainPrivateQueue(url, queueB)
    ledger.finalContents(queueA, leftA)
    ledger.finalContents(queueB, leftB)
    return { leftA, leftB }
  }

  /**
   * Asserts the end state of a source that was never faulted: every source send confirmed, every
   * A message acked through its B confirm, every id in B, A empty.
   */
  assertComplete(report: LedgerReport, leftA: readonly string[], leftB: readonly string[]): void {
    const { total } = this.#options
    assert.equal(report.outcomes.confirmed, total, 'the source (never faulted) had every message confirmed')
    assert.equal(report.ackedSource, total, 'every A message acked through its B confirm')
    const inB = new Set([...this.deliveredB, ...leftB])
    const missing = Array.from({ length: total }, (_, i) => `c-${i}`).filter((id) => !inB.has(id))
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} ids never reached B`)
    assert.deepEqual(leftA, [], 'A is empty at the end')
  }
}
