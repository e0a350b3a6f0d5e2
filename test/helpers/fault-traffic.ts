// Traffic for the broker-level fault tests (graceful restart, crash, broker down at start): a paced
// stream of tracked sends whose every outcome and settle time goes into the Ledger, a consumer task
// that records each delivery, and the end-of-run drain of a private node's queue.
//
//   const traffic = new Traffic(ledger, publisher, queue)
//   await traffic.paced(3000, 20_000)                      // 150 sends a second for 20 s
//   const late = await traffic.settled(confirmTimeout + 5_000)
//   consumer = new Consumer({ queueName: queue, taskFunction: traffic.task, connection })
//   ledger.finalContents(queue, await drainPrivateQueue(broker.url, queue))
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import * as amqplib from 'amqplib'
import {
  ConfirmTimeoutError,
  type Connection,
  ConnectionClosedError,
  type ConnectionState,
  LapinError,
  type Message,
  MessageStatus,
  type Publisher,
  PublishNackedError,
  UnroutableError,
} from 'lapinmq'
import type { Ledger, PublishOutcome } from './ledger.ts'
import type { PrivateBroker } from './private-broker.ts'

/** One tracked send: when it was made and when (and how) it settled, in performance.now() ms. */
export interface SendRecord {
  id: string
  started: number
  settled?: number
  error?: unknown
  /** Resolves once the send has settled, either way. */
  done?: Promise<void>
}

/**
 * How a failed send counts in the ledger. A timeout or a lost connection leaves the message's fate
 * open (it may have reached the queue): indeterminate. Everything else refused it: rejected.
 */
export function outcomeOf(err: unknown): PublishOutcome {
  if (err instanceof UnroutableError) return 'returned'
  if (err instanceof PublishNackedError) return 'nacked'
  if (err instanceof ConfirmTimeoutError || err instanceof ConnectionClosedError) return 'indeterminate'
  if (err instanceof LapinError && err.code === 'CHANNEL_CLOSED') return 'indeterminate'
  return 'rejected'
}

export class Traffic {
  readonly records: SendRecord[] = []
  readonly #ledger: Ledger
  readonly #publisher: Publisher
  readonly #prefix: string
  readonly #via: { exchange: string; routingKey: string }
  #next = 0

  /** `via`: the exchange and routing key to publish with (default: the default exchange, to `queue`). */
  constructor(
    ledger: Ledger,
    publisher: Publisher,
    queue: string,
    prefix = 'm',
    via?: { exchange: string; routingKey: string },
  ) {
    this.#ledger = ledger
    this.#publisher = publisher
    this.#prefix = prefix
    this.#via = via ?? { exchange: '', routingKey: queue }
  }

  /** Sends one persistent message with a fresh messageId; its outcome goes into the ledger. */
  send(): SendRecord {
    const id = `${this.#prefix}-${this.#next++}`
    const record: SendRecord = { id, started: performance.now() }
    this.records.push(record)
    this.#ledger.attempt(id)
    const { exchange, routingKey } = this.#via
    record.done = this.#publisher
      .sendMessage(exchange, routingKey, id, { messageId: id, persistent: true })
      .then(
        () => {
          record.settled = performance.now()
          this.#ledger.outcome(id, 'confirmed')
        },
        (err: unknown) => {
          record.settled = performance.now()
          record.error = err
          this.#ledger.outcome(id, outcomeOf(err))
        },
      )
    return record
  }

  /** Sends `count` messages spread evenly over `durationMs` (without waiting for their confirms). */
  async paced(count: number, durationMs: number, signal?: AbortSignal): Promise<void> {
    const start = performance.now()
    for (let i = 0; i < count && !signal?.aborted; i++) {
      const due = start + (i * durationMs) / count
      const wait = due - performance.now()
      if (wait > 1) await sleep(wait)
      this.send()
    }
  }

  /** Sends still unsettled. */
  get pending(): SendRecord[] {
    return this.records.filter((r) => r.settled === undefined)
  }

  /** Waits until every send has settled or `timeoutMs` passes; returns the ones still pending (hung). */
  async settled(timeoutMs: number): Promise<SendRecord[]> {
    const end = performance.now() + timeoutMs
    while (this.pending.length > 0 && performance.now() < end) await sleep(50)
    return this.pending
  }

  /** Confirmed ids. */
  get confirmedIds(): string[] {
    return this.records.filter((r) => r.settled !== undefined && r.error === undefined).map((r) => r.id)
  }

  /** Sends that failed, each with its error. */
  get failed(): SendRecord[] {
    return this.records.filter((r) => r.error !== undefined)
  }
}

/**
 * A consumer task that records every delivery of `queue` in the ledger and acks it after
 * `workMs()` ms (a slow consumer leaves confirmed messages in the queue for a fault to hit).
 */
export function recordingTask(
  ledger: Ledger,
  queue: string,
  delivered: Set<string>,
  workMs: () => number = () => 1,
): (message: Message) => Promise<MessageStatus> {
  return async (message) => {
    const id = String(message.properties.messageId)
    ledger.delivered(id, { redelivered: message.redelivered, queue })
    delivered.add(id)
    await sleep(workMs())
    return MessageStatus.SUCCESS
  }
}

/** Records every state change of a connection, with its time (performance.now()). */
export function recordStates(connection: Connection): { state: ConnectionState; at: number }[] {
  const states: { state: ConnectionState; at: number }[] = []
  connection.on('state', (state) => states.push({ state, at: performance.now() }))
  return states
}

/** True when `sequence` holds `wanted` in order (not necessarily next to each other). */
export function inOrder<T>(sequence: readonly T[], wanted: readonly T[]): boolean {
  let i = 0
  for (const item of sequence) if (item === wanted[i]) i++
  return i === wanted.length
}

/**
 * Takes every message out of a queue of a private node with a raw amqplib connection (not
 * lapinmq) and returns their messageIds, in order.
 */
export async function drainPrivateQueue(url: string, queue: string): Promise<string[]> {
  const connection = await amqplib.connect(url, { clientProperties: { connection_name: 'fault-drain' } })
  connection.on('error', () => {})
  try {
    const channel = await connection.createChannel()
    const ids: string[] = []
    for (;;) {
      const message = await channel.get(queue, { noAck: true })
      if (message === false) return ids
      ids.push(String(message.properties.messageId))
    }
  } finally {
    await connection.close().catch(() => undefined)
  }
}

/** Declares a durable queue on a private node with a raw amqplib connection. */
export async function declarePrivateQueue(
  url: string,
  queue: string,
  args: Record<string, unknown> = {},
): Promise<void> {
  const connection = await amqplib.connect(url, { clientProperties: { connection_name: 'fault-declare' } })
  connection.on('error', () => {})
  try {
    const channel = await connection.createChannel()
    await channel.assertQueue(queue, { durable: true, arguments: args })
  } finally {
    await connection.close().catch(() => undefined)
  }
}

/**
 * Declares an internal exchange on a private broker: it passes a publisher's existence check, and
 * every publish to it makes the broker close the publishing channel (403), at will.
 */
export async function declareInternalExchange(url: string, exchange: string): Promise<void> {
  const connection = await amqplib.connect(url, { clientProperties: { connection_name: 'fault-declare' } })
  connection.on('error', () => {})
  try {
    const channel = await connection.createChannel()
    await channel.assertExchange(exchange, 'fanout', { durable: false, internal: true })
  } finally {
    await connection.close().catch(() => undefined)
  }
}

/** Polls `check` every 100 ms until it holds or `timeoutMs` passes; returns whether it held. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<boolean> {
  const end = performance.now() + timeoutMs
  for (;;) {
    if (await check()) return true
    if (performance.now() > end) return false
    await sleep(100)
  }
}

/** `t - from` as "N ms" for a report, or 'never' when `t` is undefined. */
export function ms(t: number | undefined, from: number): string {
  return t === undefined ? 'never' : `${Math.round(t - from)} ms`
}

/**
 * Waits up to `waitMs` for every send to settle, then asserts that none is still pending (hung)
 * and none settled more than `deadlineMs` after it was made (late).
 */
export async function assertSettledByDeadline(
  traffic: Traffic,
  waitMs: number,
  deadlineMs: number,
): Promise<void> {
  const hung = await traffic.settled(waitMs)
  assert.equal(hung.length, 0, `sends still pending past their deadline: ${hung.map((r) => r.id).join(', ')}`)
  const late = traffic.records.filter((r) => (r.settled ?? Number.POSITIVE_INFINITY) - r.started > deadlineMs)
  assert.deepEqual(
    late.map((r) => [r.id, Math.round((r.settled ?? 0) - r.started)]),
    [],
    'sends that settled later than their deadline',
  )
}

/** The time (performance.now()) `connection` next drops: its next 'disconnected' event. */
export function nextDrop(connection: Connection): Promise<number> {
  return new Promise((resolve) => connection.once('disconnected', () => resolve(performance.now())))
}

/**
 * Sends made by `at` and not settled before it: every send a publishing connection lost at `at`
 * can have published twice (the unconfirmed ones, republished after the recovery).
 */
export function inFlightAt(traffic: Traffic, at: number): number {
  return traffic.records.filter((r) => r.started <= at && (r.settled === undefined || r.settled >= at)).length
}

/**
 * The highest value of `count()` from now until `until` settles, sampled every millisecond: for a
 * consumer's `unsettled`, the deliveries a drop at `until` can have the broker send again.
 */
export async function peakUntil(count: () => number, until: Promise<unknown>): Promise<number> {
  let peak = count()
  const sampler = setInterval(() => {
    peak = Math.max(peak, count())
  }, 1)
  try {
    await until
  } finally {
    clearInterval(sampler)
  }
  return peak
}

/** Asserts that every send was confirmed: none failed, not even with a typed error. */
export function assertEveryConfirmed(traffic: Traffic): void {
  const codes = new Map<string, number>()
  for (const r of traffic.failed) {
    const code = r.error instanceof LapinError ? r.error.code : String(r.error)
    codes.set(code, (codes.get(code) ?? 0) + 1)
  }
  assert.deepEqual(Object.fromEntries(codes), {}, `failed sends by code, of ${traffic.records.length}`)
  assert.equal(traffic.confirmedIds.length, traffic.records.length, 'confirmed sends')
}

/** Asserts that every failed send failed with a typed LapinError. */
export function assertFailuresTyped(traffic: Traffic): void {
  for (const r of traffic.failed) {
    assert.ok(r.error instanceof LapinError, `send ${r.id} failed with an untyped error: ${String(r.error)}`)
  }
}

/** Asserts that, within `timeoutMs`, every confirmed send was delivered and the private node's queue is empty. */
export async function assertConsumerTookEveryConfirmed(
  broker: PrivateBroker,
  queue: string,
  traffic: Traffic,
  delivered: ReadonlySet<string>,
  timeoutMs = 30_000,
): Promise<void> {
  const confirmed = traffic.confirmedIds
  const drained = await eventually(async () => {
    if (!confirmed.every((id) => delivered.has(id))) return false
    const { ready, unacked } = await broker.queueMessages(queue)
    return ready === 0 && unacked === 0
  }, timeoutMs)
  assert.ok(drained, `the consumer did not take every confirmed message (${delivered.size} delivered)`)
}

/** Asserts that the private node shows exactly one consumer on `queue`, on the connection named `connectionName`. */
export async function assertOneConsumer(
  broker: PrivateBroker,
  queue: string,
  connectionName: string,
): Promise<void> {
  const consumers = (await broker.listConsumers()).filter((c) => c.queue === queue)
  assert.equal(consumers.length, 1, `consumers on the queue: ${JSON.stringify(consumers)}`)
  assert.equal(consumers[0]?.connectionName, connectionName)
}

/** Asserts that the private node's log has no sign of a settle sent on a channel that did not deliver the message. */
export async function assertCleanBrokerLog(broker: PrivateBroker): Promise<void> {
  const log = await broker.logText()
  // RabbitMQ logs the reply name in lower case ("precondition_failed: unknown delivery tag 4").
  assert.doesNotMatch(log, /precondition_failed/i)
  assert.doesNotMatch(log, /unknown delivery tag/i)
}
