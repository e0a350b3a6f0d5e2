// A graceful broker restart (`rabbitmqctl stop_app`, 10 s, `start_app`) in
// the middle of a steady publish, on a private node. Every send, those made during the outage
// included, is confirmed within its deadline (they wait in the buffer and go out after recovery);
// every confirmed message reaches the consumer or is still in the queue; duplicates stay within what
// was in flight when the connections dropped; both connections go through 'reconnecting' back to
// 'open'; the consumer is registered again exactly once.
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

const confirmTimeout = 20_000
/** Time a send may take past its deadline to settle (the expiry timer, a busy event loop). */
const slack = 2_000
const maxInFlight = 200
const concurrency = 10

test('stop_app for 10 s during a steady publish: nothing lost, nothing hung, consumer back once', async () => {
  const queue = 'fault-graceful-restart'
  // Rejected without requeue, a message goes here: an ack never does.
  const dlq = `${queue}.dlq`
  const queueArgs = { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq }
  await declarePrivateQueue(node.broker.url, dlq)
  const ledger = new Ledger()
  const recovery = { initialDelay: 100, maxDelay: 2_000 }
  const pair = connectionPair(
    { url: node.broker.url, recovery },
    { pub: 'fault-graceful-pub', con: 'fault-graceful-con' },
  )
  const { pubConnection, conConnection, pubStates, conStates, errors: connectionErrors } = pair
  const consumerErrors: LapinError[] = []
  const publisher = new Publisher({ kind: 'async', connection: pubConnection, confirmTimeout, maxInFlight })
  const delivered = new Set<string>()
  const outage = { from: 0, stopped: 0, to: 0, queued: 0, sendsInFlight: 0, unsettled: 0 }
  const consumer = new Consumer({
    queueName: queue,
    queueArgs,
    // 50 messages a second until the fault (a third of the publish rate: the queue fills), then fast.
    taskFunction: recordingTask(ledger, queue, delivered, () => (outage.from === 0 ? 200 : 1)),
    concurrency,
    connection: conConnection,
  })
  consumer.on('error', (e) => consumerErrors.push(e))
  const traffic = new Traffic(ledger, publisher, queue)
  try {
    await consumer.start()
    await publisher.start()

    const fault = (async () => {
      await sleep(3_000)
      // Confirmed and not yet delivered: in the queue when the broker stops.
      outage.queued = traffic.confirmedIds.filter((id) => !delivered.has(id)).length
      const pubDrop = nextDrop(pubConnection)
      const unsettled = peakUntil(() => consumer.unsettled, nextDrop(conConnection))
      outage.from = performance.now()
      await node.broker.stopApp()
      // What a drop can make arrive twice: the sends unsettled when the publishing connection
      // dropped (republished) and the deliveries unsettled when the consuming one did (redelivered).
      outage.sendsInFlight = inFlightAt(traffic, await pubDrop)
      outage.unsettled = await unsettled
      outage.stopped = performance.now()
      await sleep(10_000)
      await node.broker.startApp()
      outage.to = performance.now()
    })()
    await traffic.paced(3_600, 24_000)
    await fault

    // Every send settles by its deadline (hung = 0); the last one was made a moment ago.
    await assertSettledByDeadline(traffic, confirmTimeout + slack, confirmTimeout + slack)
    assertEveryConfirmed(traffic)
    const duringOutage = traffic.records.filter((r) => r.started >= outage.from && r.started <= outage.to)
    const outageConfirmed = duringOutage.filter((r) => r.error === undefined)
    assert.ok(duringOutage.length > 1_000, `${duringOutage.length} sends during the outage`)
    assert.ok(outage.queued >= 100, `${outage.queued} confirmed messages in the queue when it stopped`)

    // The consumer takes everything that reached the queue.
    await assertConsumerTookEveryConfirmed(node.broker, queue, traffic, delivered)

    // Connections went through 'reconnecting' and are open again; one consumer, one connection each.
    assertPairReconnected(pair)
    await assertOneConsumer(node.broker, queue, 'fault-graceful-con')
    const connections = await node.broker.listConnections()
    for (const name of ['fault-graceful-pub', 'fault-graceful-con']) {
      assert.equal(connections.filter((c) => c.name === name).length, 1, `connections named ${name}`)
    }
    assert.deepEqual(connectionErrors, [], 'connection errors (recovery gave up?)')
    // No settle reached a channel that did not deliver the message.
    await assertCleanBrokerLog(node.broker)
    assert.equal(publisher.unconfirmed + publisher.waiting, 0)

    await consumer.stop()
    ledger.finalContents(queue, await drainPrivateQueue(node.broker.url, queue))
    const deadLettered = await drainPrivateQueue(node.broker.url, dlq)
    ledger.finalContents(dlq, deadLettered)
    const report = ledger.print('graceful restart (stop_app 10 s, start_app) during a steady publish')
    const reconnectedAt = (states: typeof pubStates): number =>
      Math.round((states.findLast((s) => s.state === 'open')?.at ?? 0) - outage.to)
    process.stderr.write(
      `  ${outage.queued} confirmed messages in the queue at stop_app; stop_app took ${Math.round(outage.stopped - outage.from)} ms, outage ${Math.round(outage.to - outage.from)} ms; ` +
        `reopened ${reconnectedAt(pubStates)} / ${reconnectedAt(conStates)} ms after start_app (publisher / consumer)\n` +
        `  sends during the outage: ${duringOutage.length}, confirmed after recovery ${outageConfirmed.length}, ` +
        `failed ${duringOutage.length - outageConfirmed.length}; in flight at the drop: ${outage.sendsInFlight} sends, ${outage.unsettled} deliveries; consumer errors: ${consumerErrors.map((e) => e.code).join(', ') || 'none'}; ` +
        `stale settles dropped: ${consumer.staleSettles}\n`,
    )
    ledger.assertSound({ maxDuplicated: outage.sendsInFlight + outage.unsettled })
    assert.equal(report.attempted, 3_600)
    assert.equal(report.outcomes.confirmed, 3_600)
    assert.equal(deadLettered.length, 0, 'messages rejected without requeue instead of acked')
  } finally {
    await consumer.stop()
    await publisher.stop({ timeout: 1_000 })
    await pubConnection.close()
    await conConnection.close()
  }
})
