// The broker crashes (`kill -9`) in the middle of a stream of persistent
// messages and is started again from its data directory, once with a durable classic queue and once
// with a quorum queue, on one private node. Every send is confirmed (those in doubt at the crash are
// republished after the restart), a confirmed message survives the crash (lost = 0), no send hangs,
// duplicates stay within what was in flight when the connections dropped, and the consumer is back,
// once.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Consumer, type LapinError, Publisher } from 'lapinmq'
import { assertPairReconnected, connectionPair, usePrivateBroker } from '../helpers/fault-setup.ts'
import {
  assertCleanBrokerLog,
  assertConsumerTookEveryConfirmed,
  assertEveryConfirmed,
  assertOneConsumer,
  assertSettledByDeadline,
  declarePrivateQueue,
  drainPrivateQueue,
  inFlightAt,
  nextDrop,
  peakUntil,
  recordingTask,
  Traffic,
} from '../helpers/fault-traffic.ts'
import { Ledger } from '../helpers/ledger.ts'

const node = usePrivateBroker()

/** Long enough for a send made just before the crash to be confirmed after the restart. */
const confirmTimeout = 45_000
const slack = 2_000
const maxInFlight = 200
const concurrency = 10
const count = 2_000

const kinds = [
  { kind: 'classic', queueArgs: {} },
  { kind: 'quorum', queueArgs: { 'x-queue-type': 'quorum' } },
] as const

for (const { kind, queueArgs } of kinds) {
  test(`kill -9 mid-stream, restart: ${kind} queue, persistent messages: nothing lost or hung`, async () => {
    const queue = `fault-crash-${kind}`
    // Rejected without requeue, a message goes to the dead-letter queue: an ack never does.
    const dlq = `${queue}.dlq`
    await declarePrivateQueue(node.broker.url, dlq)
    const args = { ...queueArgs, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq }
    await declarePrivateQueue(node.broker.url, queue, args)
    const ledger = new Ledger()
    const recovery = { initialDelay: 100, maxDelay: 2_000 }
    const pair = connectionPair(
      { url: node.broker.url, recovery },
      { pub: `fault-crash-${kind}-pub`, con: `fault-crash-${kind}-con` },
    )
    const { pubConnection, conConnection, pubStates, conStates, errors: connectionErrors } = pair
    const consumerErrors: LapinError[] = []
    const publisher = new Publisher({ kind: 'async', connection: pubConnection, confirmTimeout, maxInFlight })
    const delivered = new Set<string>()
    const outage = { from: 0, to: 0, confirmedBefore: 0, queued: 0, sendsInFlight: 0, unsettled: 0 }
    const consumer = new Consumer({
      queueName: queue,
      queueArgs: args,
      // 100 messages a second until the fault (half the publish rate: the queue fills), then fast.
      taskFunction: recordingTask(ledger, queue, delivered, () => (outage.from === 0 ? 100 : 1)),
      concurrency,
      connection: conConnection,
    })
    consumer.on('error', (e) => consumerErrors.push(e))
    const traffic = new Traffic(ledger, publisher, queue, kind)
    try {
      await consumer.start()
      await publisher.start()

      const fault = (async () => {
        await sleep(3_000)
        const confirmedBefore = traffic.confirmedIds
        outage.confirmedBefore = confirmedBefore.length
        // Confirmed and not yet delivered: in the queue when the node dies.
        outage.queued = confirmedBefore.filter((id) => !delivered.has(id)).length
        const pubDrop = nextDrop(pubConnection)
        const unsettled = peakUntil(() => consumer.unsettled, nextDrop(conConnection))
        outage.from = performance.now()
        await node.broker.kill9()
        // What the crash can make arrive twice: the sends unsettled when the publishing connection
        // dropped (republished) and the deliveries unsettled when the consuming one did (redelivered).
        outage.sendsInFlight = inFlightAt(traffic, await pubDrop)
        outage.unsettled = await unsettled
        await node.broker.restart()
        outage.to = performance.now()
      })()
      await traffic.paced(count, 10_000)
      await fault

      await assertSettledByDeadline(traffic, confirmTimeout + slack, confirmTimeout + slack)
      assertEveryConfirmed(traffic)

      assert.ok(outage.queued >= 100, `${outage.queued} confirmed messages in the queue at the crash`)
      await assertConsumerTookEveryConfirmed(node.broker, queue, traffic, delivered)

      assertPairReconnected(pair)
      await assertOneConsumer(node.broker, queue, `fault-crash-${kind}-con`)
      assert.deepEqual(connectionErrors, [], 'connection errors (recovery gave up?)')
      // No settle reached a channel that did not deliver the message.
      await assertCleanBrokerLog(node.broker)
      assert.equal(publisher.unconfirmed + publisher.waiting, 0)

      await consumer.stop()
      ledger.finalContents(queue, await drainPrivateQueue(node.broker.url, queue))
      const deadLettered = await drainPrivateQueue(node.broker.url, dlq)
      ledger.finalContents(dlq, deadLettered)
      const report = ledger.print(`kill -9 and restart mid-stream, ${kind} queue`)
      const reconnectedAt = (states: typeof pubStates): number =>
        Math.round((states.findLast((s) => s.state === 'open')?.at ?? 0) - outage.to)
      const failures = new Map<string, number>()
      for (const r of traffic.failed) {
        const code = (r.error as LapinError).code
        failures.set(code, (failures.get(code) ?? 0) + 1)
      }
      process.stderr.write(
        `  crash after ${outage.confirmedBefore} confirms, ${outage.queued} of them in the queue; down (kill -9 + restart) ${Math.round(outage.to - outage.from)} ms; ` +
          `reopened ${reconnectedAt(pubStates)} / ${reconnectedAt(conStates)} ms after the restart (publisher / consumer)\n` +
          `  failed sends by code: ${JSON.stringify(Object.fromEntries(failures))}; ` +
          `in flight at the drop: ${outage.sendsInFlight} sends, ${outage.unsettled} deliveries; ` +
          `consumer errors: ${consumerErrors.map((e) => e.code).join(', ') || 'none'}; ` +
          `stale settles dropped: ${consumer.staleSettles}\n`,
      )
      ledger.assertSound({ maxDuplicated: outage.sendsInFlight + outage.unsettled })
      assert.equal(report.attempted, count)
      assert.equal(report.outcomes.confirmed, count)
      assert.equal(deadLettered.length, 0, 'messages rejected without requeue instead of acked')
    } finally {
      await consumer.stop()
      await publisher.stop({ timeout: 1_000 })
      await pubConnection.close()
      await conConnection.close()
    }
  })
}
