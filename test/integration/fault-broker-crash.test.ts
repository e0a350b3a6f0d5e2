// Issue 3, acceptance 3: the broker crashes (`kill -9`) in the middle of a stream of persistent
// messages and is started again from its data directory, once with a durable classic queue and once
// with a quorum queue, on one private node. A confirmed message survives the crash (lost = 0), no
// send hangs, duplicates stay within the in-flight window, and the consumer is back, once.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Connection, Consumer, LapinError, Publisher } from 'lapinmq'
import {
  declarePrivateQueue,
  drainPrivateQueue,
  eventually,
  inOrder,
  recordingTask,
  recordStates,
  Traffic,
} from '../helpers/fault-traffic.ts'
import { Ledger } from '../helpers/ledger.ts'
import { PrivateBroker } from '../helpers/private-broker.ts'

let broker: PrivateBroker

before(async () => {
  broker = await PrivateBroker.start()
})

after(async () => {
  await broker?.stop()
})

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
    await declarePrivateQueue(broker.url, queue, queueArgs)
    const ledger = new Ledger()
    const recovery = { initialDelay: 100, maxDelay: 2_000 }
    const pubConnection = new Connection({ url: broker.url, name: `fault-crash-${kind}-pub`, recovery })
    const conConnection = new Connection({ url: broker.url, name: `fault-crash-${kind}-con`, recovery })
    const pubStates = recordStates(pubConnection)
    const conStates = recordStates(conConnection)
    const connectionErrors: LapinError[] = []
    const consumerErrors: LapinError[] = []
    pubConnection.on('error', (e) => connectionErrors.push(e))
    conConnection.on('error', (e) => connectionErrors.push(e))
    const publisher = new Publisher({ kind: 'async', connection: pubConnection, confirmTimeout, maxInFlight })
    const delivered = new Set<string>()
    const outage = { from: 0, to: 0, confirmedBefore: 0, queued: 0 }
    const consumer = new Consumer({
      queueName: queue,
      queueArgs,
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
        outage.from = performance.now()
        await broker.kill9()
        await broker.restart()
        outage.to = performance.now()
      })()
      await traffic.paced(count, 10_000)
      await fault

      const hung = await traffic.settled(confirmTimeout + slack)
      assert.equal(
        hung.length,
        0,
        `sends still pending past their deadline: ${hung.map((r) => r.id).join(', ')}`,
      )
      const late = traffic.records.filter(
        (r) => (r.settled ?? Number.POSITIVE_INFINITY) - r.started > confirmTimeout + slack,
      )
      assert.deepEqual(
        late.map((r) => [r.id, Math.round((r.settled ?? 0) - r.started)]),
        [],
        'sends that settled later than their deadline',
      )
      for (const r of traffic.failed) {
        assert.ok(
          r.error instanceof LapinError,
          `send ${r.id} failed with an untyped error: ${String(r.error)}`,
        )
      }

      assert.ok(outage.queued >= 100, `${outage.queued} confirmed messages in the queue at the crash`)
      const confirmed = traffic.confirmedIds
      const drained = await eventually(async () => {
        if (!confirmed.every((id) => delivered.has(id))) return false
        const { ready, unacked } = await broker.queueMessages(queue)
        return ready === 0 && unacked === 0
      }, 30_000)
      assert.ok(drained, `the consumer did not take every confirmed message (${delivered.size} delivered)`)

      for (const [name, states, connection] of [
        ['publisher', pubStates, pubConnection],
        ['consumer', conStates, conConnection],
      ] as const) {
        const sequence = states.map((s) => s.state)
        assert.ok(
          inOrder(sequence, ['open', 'reconnecting', 'open']),
          `${name} states: ${sequence.join(' → ')}`,
        )
        assert.equal(connection.state, 'open')
      }
      const consumers = (await broker.listConsumers()).filter((c) => c.queue === queue)
      assert.equal(consumers.length, 1, `consumers on the queue: ${JSON.stringify(consumers)}`)
      assert.equal(consumers[0]?.connectionName, `fault-crash-${kind}-con`)
      assert.deepEqual(connectionErrors, [], 'connection errors (recovery gave up?)')
      // No settle reached a channel that did not deliver the message.
      assert.doesNotMatch(await broker.logText(), /PRECONDITION_FAILED|unknown delivery tag/)
      assert.equal(publisher.unconfirmed + publisher.waiting, 0)

      await consumer.stop()
      ledger.finalContents(queue, await drainPrivateQueue(broker.url, queue))
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
          `consumer errors: ${consumerErrors.map((e) => e.code).join(', ') || 'none'}; ` +
          `stale settles dropped: ${consumer.staleSettles}\n`,
      )
      ledger.assertSound({ maxDuplicated: maxInFlight + concurrency })
      assert.equal(report.attempted, count)
    } finally {
      await consumer.stop()
      await publisher.stop({ timeout: 1_000 })
      await pubConnection.close()
      await conConnection.close()
    }
  })
}
