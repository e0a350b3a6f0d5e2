// The retry ladder under faults, on a private node.
// (a) 2,000 messages through a Consumer with `retry: { delays: [200, 400] }`: every 10th fails
//     twice (FAIL_RETRY_LATER, then a throw) and succeeds on its third attempt, the rest succeed at
//     once, while the broker force-closes (320) the consumer's connection 5 times; that connection
//     also carries the ladder's moves. Every message ends processed, nothing is lost or left in a
//     queue, duplicates stay within what the closes can redeliver, and a message that failed twice
//     succeeds on attempt 3 unless a close made the broker redeliver it.
// (b) Messages waiting in a delay queue survive a restart of the node (durable queue, persistent
//     copies) and come back after their delay: each processed on attempt 2, none lost.
// (c) Moves the broker refuses (the delay queue nacks every copy for a while): each original is
//     acked only once its copy is confirmed, so a refused one comes back and is moved later. A close
//     rarely falls between an early ack and its copy's arrival; a nack always does.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Consumer, type LapinError, type Message, MessageStatus, Publisher } from 'lapinmq'
import { connectionPair, usePrivateBroker } from '../helpers/fault-setup.ts'
import {
  assertCleanBrokerLog,
  assertOneConsumer,
  declarePrivateQueue,
  drainPrivateQueue,
  eventually,
  nextDrop,
  outcomeOf,
  peakUntil,
} from '../helpers/fault-traffic.ts'
import { Ledger } from '../helpers/ledger.ts'
import type { PrivateBroker } from '../helpers/private-broker.ts'

const node = usePrivateBroker()

const recovery = { initialDelay: 100, maxDelay: 2_000 }
const concurrency = 10
const prefetch = 20

/** Publishes `ids` (persistent, messageId = id) to `queue` with confirms, each outcome in the ledger; resolves once all settled. */
async function publishAll(ledger: Ledger, publisher: Publisher, queue: string, ids: string[]): Promise<void> {
  const settles: Promise<void>[] = []
  for (const id of ids) {
    await publisher.waitForRoom()
    ledger.attempt(id)
    settles.push(
      publisher.sendMessageToQueue(queue, id, { messageId: id, persistent: true }).then(
        () => ledger.outcome(id, 'confirmed'),
        (err: unknown) => ledger.outcome(id, outcomeOf(err)),
      ),
    )
  }
  await Promise.all(settles)
}

/** The messages (ready and unacked) in each queue of the private node, by name (one rabbitmqctl run). */
async function queueCounts(broker: PrivateBroker): Promise<Map<string, number>> {
  const out = await broker.ctl('-q', 'list_queues', 'name', 'messages', '--formatter', 'json')
  const rows = JSON.parse(out || '[]') as { name: string; messages: number }[]
  return new Map(rows.map((r) => [r.name, r.messages]))
}

/** Whether every queue in `queues` exists on the private node and holds no message. */
async function allEmpty(broker: PrivateBroker, queues: string[]): Promise<boolean> {
  const counts = await queueCounts(broker)
  return queues.every((q) => counts.get(q) === 0)
}

/** One delivery as the task saw it. */
interface Seen {
  attempt: number
  redelivered: boolean
  succeeded: boolean
}

test('retry ladder [200, 400], 2,000 messages, every 10th failing twice, 5 forced closes of the consumer connection: nothing lost', async () => {
  const started = performance.now()
  const total = 2_000
  const closes = 5
  const delays = [200, 400]
  const queue = 'fault-retry-ladder'
  const delayQueues = delays.map((ms) => `${queue}.retry.${ms}`)
  const dlq = `${queue}.dead`
  await declarePrivateQueue(node.broker.url, queue)

  const ledger = new Ledger()
  const pair = connectionPair({ url: node.broker.url, recovery }, { pub: 'retry-pub', con: 'retry-con' })
  const { pubConnection, conConnection, errors: connectionErrors } = pair
  let disconnects = 0
  conConnection.on('disconnected', () => disconnects++)
  const publisher = new Publisher({ kind: 'async', connection: pubConnection, maxInFlight: 500 })

  // The closes come once the consumer has taken a given number of deliveries (2,400 in all: 2,000
  // first ones and 2 retries of 200 messages). rabbitmqctl is slow on a busy machine: while the
  // injector is more than `lead` deliveries behind its next close, the tasks slow to a trickle, so
  // every close lands while deliveries are in flight.
  const points = [300, 700, 1_100, 1_500, 1_900]
  const lead = 40
  let injected = 0
  let deliveries = 0
  const injectorBehind = (): boolean =>
    injected < points.length && deliveries > (points[injected] as number) + lead

  const failingId = (id: string): boolean => Number(id.slice(2)) % 10 === 0
  const failures = new Map<string, number>()
  const seen = new Map<string, Seen[]>()
  const processed = new Set<string>()
  const task = async (message: Message): Promise<MessageStatus> => {
    deliveries++
    const id = String(message.properties.messageId)
    const { attempt, redelivered } = message
    await sleep(5 + 10 * Math.random() + (injectorBehind() ? 200 : 0))
    const failed = failingId(id) ? (failures.get(id) ?? 0) : 2
    const succeeded = failed >= 2
    seen.set(id, [...(seen.get(id) ?? []), { attempt, redelivered, succeeded }])
    ledger.delivered(id, { redelivered, queue, retried: !succeeded })
    if (succeeded) {
      processed.add(id)
      return MessageStatus.SUCCESS
    }
    failures.set(id, failed + 1)
    // Both kinds of failure the ladder takes: a status, then a throw.
    if (failed === 0) return MessageStatus.FAIL_RETRY_LATER
    throw new Error('second failure of a test message')
  }
  const consumer = new Consumer({
    queueName: queue,
    concurrency,
    prefetch,
    connection: conConnection,
    retry: { delays },
    taskFunction: task,
  })
  const consumerErrors: LapinError[] = []
  consumer.on('error', (e) => consumerErrors.push(e))

  try {
    await publisher.start()
    const ids = Array.from({ length: total }, (_, i) => `r-${i}`)
    await publishAll(ledger, publisher, queue, ids)
    await consumer.start()

    // The closes; for each, the consumer's unsettled deliveries at their peak until the drop.
    const faults: { at: number; deliveries: number; unsettled: number }[] = []
    for (const point of points) {
      assert.ok(
        await eventually(() => deliveries >= point, 60_000),
        `the consumer reached ${point} deliveries`,
      )
      assert.ok(
        await eventually(() => conConnection.state === 'open', 30_000),
        'consumer connection open again',
      )
      const at = Math.round(performance.now() - started)
      const before = deliveries
      const unsettled = peakUntil(() => consumer.unsettled, nextDrop(conConnection))
      const closed = await node.broker.closeConnections('retry-con')
      injected++
      assert.equal(closed, 1, 'connections closed')
      faults.push({ at, deliveries: before, unsettled: await unsettled })
    }

    // Recovery: every message processed, nothing unsettled, every queue of the ladder empty.
    const ladderQueues = [queue, ...delayQueues, dlq]
    const settled = await eventually(
      async () =>
        processed.size === total &&
        consumer.unsettled === 0 &&
        consumer.running === 0 &&
        (await allEmpty(node.broker, ladderQueues)),
      60_000,
    )
    const settledMs = Math.round(performance.now() - started)
    await assertOneConsumer(node.broker, queue, 'retry-con')
    const disconnectsDuringRun = disconnects

    await consumer.stop()
    const left = new Map<string, string[]>()
    for (const q of ladderQueues) {
      left.set(q, await drainPrivateQueue(node.broker.url, q))
      ledger.finalContents(q, left.get(q) ?? [])
    }

    // A twice-failing message whose successful attempt was not 3: a failure the task counted was
    // not on the copy that succeeded (the original came back, redelivered, after a close).
    const exceptions = ids.filter(
      (id) => failingId(id) && !(seen.get(id) ?? []).some((s) => s.succeeded && s.attempt === 3),
    )
    const redeliveredIds = ids.filter((id) => (seen.get(id) ?? []).some((s) => s.redelivered))
    const report = ledger.print(`retry ladder [${delays}], ${total} messages, ${closes} forced closes`)
    process.stderr.write(
      `  closes (ms: deliveries before, unsettled peak): ${faults.map((f) => `${f.at}:${f.deliveries}/${f.unsettled}`).join(' ')}\n` +
        `  ids redelivered ${redeliveredIds.length}; twice-failing ids not done on attempt 3: ${exceptions.length} ` +
        `(${exceptions.slice(0, 5).join(', ')}); consumer errors ${consumerErrors.map((e) => e.code).join(',') || 'none'}; ` +
        `stale settles ${consumer.staleSettles}; all settled ${settledMs} ms after start\n`,
    )

    // Each close can make the broker redeliver only what was unacked on the consumer's channel: at
    // most `prefetch` messages. Each of those can be processed once more: a success whose ack the
    // close lost, or a failure whose copy was confirmed into a delay queue but whose original's ack
    // was lost (both branches then run to a success). The ladder's moves are not republished after
    // a close (their originals come back instead), so they add none: at most prefetch × closes ids.
    // (Measured: about concurrency × closes, the tasks running at each close: they finish after it,
    // their acks are dropped with the channel, and the broker delivers their messages again.)
    const maxDuplicated = prefetch * closes
    ledger.assertSound({ maxDuplicated })
    assert.ok(settled, `not settled: processed ${processed.size}/${total}, unsettled ${consumer.unsettled}`)
    assert.equal(report.outcomes.confirmed, total)
    assert.equal(report.remaining, 0, 'messages left in the work, delay or dead-letter queues')
    for (const [q, contents] of left) assert.deepEqual(contents, [], `left in ${q}`)
    // Every message processed (no message fails more than twice: the ladder never dead-letters).
    assert.deepEqual(
      ids.filter((id) => !processed.has(id)),
      [],
      'messages never processed',
    )

    // The attempts: 1 for a message that never failed; [1, 2, 3] for a twice-failing one that no
    // close touched. Exceptions only where the broker redelivered, and bounded like duplicates.
    for (const id of ids) {
      const list = seen.get(id) ?? []
      if (!failingId(id)) {
        assert.ok(
          list.every((s) => s.succeeded && s.attempt === 1),
          `${id}: ${JSON.stringify(list)}`,
        )
      } else if (!list.some((s) => s.redelivered)) {
        assert.deepEqual(
          list.map((s) => [s.attempt, s.succeeded]),
          [
            [1, false],
            [2, false],
            [3, true],
          ],
          `${id}: its deliveries`,
        )
      }
      if (failingId(id)) assert.equal(failures.get(id), 2, `${id}: failures`)
    }
    for (const id of exceptions)
      assert.ok(redeliveredIds.includes(id), `${id} not done on attempt 3, never redelivered`)
    assert.ok(exceptions.length <= maxDuplicated, `${exceptions.length} exceptions`)
    assert.equal(
      report.deliveries >= total + 2 * (total / 10),
      true,
      'deliveries: first ones and two retries',
    )

    // Each close happened, was seen, and found deliveries in flight; the connection came back.
    assert.equal(faults.length, closes)
    assert.equal(disconnectsDuringRun, closes)
    assert.ok(
      faults.some((f) => f.unsettled > 0),
      `the closes found deliveries in flight: ${JSON.stringify(faults)}`,
    )
    assert.deepEqual(connectionErrors, [], 'no connection gave up')
    // No settle reached a channel that did not deliver the message.
    await assertCleanBrokerLog(node.broker)
  } finally {
    await consumer.stop()
    await publisher.stop({ timeout: 1_000 })
    await pubConnection.close()
    await conConnection.close()
  }
})

test('messages waiting in a delay queue survive a restart of the node and come back', async () => {
  const started = performance.now()
  const total = 200
  // Longer than the restart (a graceful stop and a start of the node), so the messages are still
  // waiting in the delay queue when the node is back.
  const delay = 30_000
  const queue = 'fault-retry-restart'
  const delayQueue = `${queue}.retry.${delay}`
  const dlq = `${queue}.dead`
  await declarePrivateQueue(node.broker.url, queue)

  const ledger = new Ledger()
  const pair = connectionPair(
    { url: node.broker.url, recovery },
    { pub: 'retry-restart-pub', con: 'retry-restart-con' },
  )
  const { pubConnection, conConnection, errors: connectionErrors } = pair
  const publisher = new Publisher({ kind: 'async', connection: pubConnection })
  const failedAt = new Map<string, number>()
  const done = new Map<string, { attempt: number; at: number }>()
  const consumer = new Consumer({
    queueName: queue,
    concurrency,
    prefetch,
    connection: conConnection,
    retry: { delays: [delay] },
    taskFunction: (message) => {
      const id = String(message.properties.messageId)
      const retried = !failedAt.has(id)
      ledger.delivered(id, { redelivered: message.redelivered, queue, retried })
      if (retried) {
        failedAt.set(id, performance.now())
        return MessageStatus.FAIL_RETRY_LATER
      }
      done.set(id, { attempt: message.attempt, at: performance.now() })
      return MessageStatus.SUCCESS
    },
  })

  try {
    await publisher.start()
    await consumer.start()
    const ids = Array.from({ length: total }, (_, i) => `d-${i}`)
    await publishAll(ledger, publisher, queue, ids)

    // Every message failed once and waits in the delay queue; the work queue is empty.
    const waiting = await eventually(async () => {
      if (failedAt.size < total || consumer.unsettled > 0) return false
      const delayed = await node.broker.queueMessages(delayQueue)
      const work = await node.broker.queueMessages(queue)
      return delayed.ready === total && work.ready + work.unacked === 0
    }, 20_000)
    assert.ok(waiting, `not all in the delay queue: failed ${failedAt.size}`)
    const firstFailure = Math.min(...failedAt.values())

    const restartFrom = performance.now()
    await node.broker.restart()
    const restarted = performance.now()
    // Still within the delay: the node kept them across the restart (not yet expired back).
    // (A delay queue gone with the restart counts as holding none.)
    const afterRestart = (await queueCounts(node.broker)).get(delayQueue) ?? 0
    const checkedAt = performance.now()

    // After the delay, each comes back to the work queue and is processed, on attempt 2.
    const back = await eventually(
      async () => {
        if (done.size < total || consumer.unsettled > 0) return false
        return allEmpty(node.broker, [queue, delayQueue, dlq])
      },
      firstFailure + delay + 20_000 - performance.now(),
    )
    const doneMs = Math.round(performance.now() - started)
    await assertOneConsumer(node.broker, queue, 'retry-restart-con')

    await consumer.stop()
    const left = new Map<string, string[]>()
    for (const q of [queue, delayQueue, dlq]) {
      left.set(q, await drainPrivateQueue(node.broker.url, q))
      ledger.finalContents(q, left.get(q) ?? [])
    }
    const report = ledger.print(`${total} messages in a ${delay} ms delay queue across a node restart`)
    process.stderr.write(
      `  restart took ${Math.round(restarted - restartFrom)} ms; delay queue after it ${afterRestart}, ` +
        `${Math.round(checkedAt - firstFailure)} ms after the first failure; waited for them until ${doneMs} ms after start\n`,
    )

    // Nothing was in flight at the restart (every original acked, the consumer idle): no duplicate.
    ledger.assertSound({ maxDuplicated: 0 })
    assert.ok(back, `processed ${done.size}/${total} after the restart`)
    assert.ok(
      checkedAt - firstFailure < delay,
      `the restart took too long for the next check: ${Math.round(checkedAt - firstFailure)} ms >= ${delay} ms`,
    )
    assert.equal(afterRestart, total, 'messages in the delay queue after the restart')
    assert.equal(report.outcomes.confirmed, total)
    for (const [q, contents] of left) assert.deepEqual(contents, [], `left in ${q}`)
    for (const id of ids) {
      const d = done.get(id)
      assert.equal(d?.attempt, 2, `${id}: attempt`)
      // Back only after the delay, and after the restart.
      assert.ok((d?.at ?? 0) > restarted, `${id} processed before the node was back`)
      assert.ok((d?.at ?? 0) - (failedAt.get(id) ?? 0) >= delay - 50, `${id} came back before its delay`)
    }
    assert.deepEqual(connectionErrors, [], 'no connection gave up')
  } finally {
    await consumer.stop()
    await publisher.stop({ timeout: 1_000 })
    await pubConnection.close()
    await conConnection.close()
  }
})

test('moves the broker refuses (nack): the originals come back and go along the ladder later, none lost', async () => {
  const total = 100
  const queue = 'fault-retry-refused'
  const delayQueue = `${queue}.retry.200`
  const dlq = `${queue}.dead`
  await declarePrivateQueue(node.broker.url, queue)
  // Until cleared, the delay queue takes nothing: every copy moved to it is nacked (reject-publish).
  const policy = 'fault-retry-refuse-moves'
  await node.broker.ctl(
    ...['set_policy', policy, `^${queue}\\.retry\\.`, '{"max-length":0,"overflow":"reject-publish"}'],
    ...['--apply-to', 'queues'],
  )

  const ledger = new Ledger()
  const pair = connectionPair(
    { url: node.broker.url, recovery },
    { pub: 'retry-refused-pub', con: 'retry-refused-con' },
  )
  const { pubConnection, conConnection, errors: connectionErrors } = pair
  const publisher = new Publisher({ kind: 'async', connection: pubConnection })
  // Ids delivered again on attempt 1: their move was refused and the original requeued.
  const refused = new Set<string>()
  const done = new Map<string, number[]>()
  const consumer = new Consumer({
    queueName: queue,
    concurrency,
    prefetch,
    connection: conConnection,
    retry: { delays: [200] },
    // Fails until the ladder has counted one failure (attempt 2), then succeeds.
    taskFunction: (message) => {
      const id = String(message.properties.messageId)
      const retried = message.attempt === 1
      ledger.delivered(id, { redelivered: message.redelivered, queue, retried })
      if (retried) {
        if (message.redelivered) refused.add(id)
        return MessageStatus.FAIL_RETRY_LATER
      }
      done.set(id, [...(done.get(id) ?? []), message.attempt])
      return MessageStatus.SUCCESS
    },
  })
  const consumerErrors: LapinError[] = []
  consumer.on('error', (e) => consumerErrors.push(e))

  try {
    await publisher.start()
    await consumer.start()
    const ids = Array.from({ length: total }, (_, i) => `n-${i}`)
    await publishAll(ledger, publisher, queue, ids)
    const someRefused = await eventually(() => refused.size >= 10, 20_000)
    await node.broker.ctl('clear_policy', policy)

    const finished = await eventually(
      async () =>
        done.size === total &&
        consumer.unsettled === 0 &&
        (await allEmpty(node.broker, [queue, delayQueue, dlq])),
      30_000,
    )
    await consumer.stop()
    const left = new Map<string, string[]>()
    for (const q of [queue, delayQueue, dlq]) {
      left.set(q, await drainPrivateQueue(node.broker.url, q))
      ledger.finalContents(q, left.get(q) ?? [])
    }
    const report = ledger.print(`${total} messages, moves to the delay queue refused (nacked) for a while`)
    process.stderr.write(
      `  ids whose move was refused at least once: ${refused.size}; consumer errors ${consumerErrors.map((e) => e.code).join(',') || 'none'}\n`,
    )

    // No close, no redelivery of a processed message: no duplicate.
    ledger.assertSound({ maxDuplicated: 0 })
    assert.ok(finished, `processed ${done.size}/${total}`)
    assert.ok(someRefused, `moves refused for ${refused.size} ids only`)
    assert.equal(report.outcomes.confirmed, total)
    for (const [q, contents] of left) assert.deepEqual(contents, [], `left in ${q}`)
    for (const id of ids) assert.deepEqual(done.get(id), [2], `${id}: attempts it succeeded on`)
    assert.deepEqual(consumerErrors, [], 'consumer errors')
    assert.deepEqual(connectionErrors, [], 'connection errors')
    // No requeue of a message already acked (nor any other settle on a wrong tag).
    await assertCleanBrokerLog(node.broker)
  } finally {
    await node.broker.ctl('clear_policy', policy).catch(() => undefined)
    await consumer.stop()
    await publisher.stop({ timeout: 1_000 })
    await pubConnection.close()
    await conConnection.close()
  }
})
