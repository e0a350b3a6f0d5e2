// stats() under faults equals the ledger. A paced stream of sends goes through forced connection
// closes (320, both connections, twice) with republish on, while a consumer takes every message;
// then a memory alarm blocks the publishing connection. At the end, each figure of the publisher's,
// consumer's and connections' stats() is the ledger's count of the same thing, exactly.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Connection, Consumer, MessageStatus, Publisher } from 'lapinmq'
import { usePrivateBroker } from '../helpers/fault-setup.ts'
import { declarePrivateQueue, drainPrivateQueue, eventually, Traffic } from '../helpers/fault-traffic.ts'
import { Ledger } from '../helpers/ledger.ts'

const node = usePrivateBroker()

test('stats() equal the ledger through forced connection closes and a memory alarm', async () => {
  const queue = 'stats-faults'
  const ledger = new Ledger()
  await declarePrivateQueue(node.broker.url, queue)
  const pubConnection = new Connection({ url: node.broker.url, name: 'stats-pub' })
  const conConnection = new Connection({ url: node.broker.url, name: 'stats-con' })
  pubConnection.on('error', () => {})
  conConnection.on('error', () => {})
  const publisher = new Publisher({ kind: 'async', maxInFlight: 100, connection: pubConnection })
  const consumer = new Consumer({
    queueName: queue,
    connection: conConnection,
    concurrency: 10,
    taskFunction: async (message) => {
      ledger.delivered(String(message.properties.messageId), { redelivered: message.redelivered, queue })
      await sleep(30) // slower than the traffic: tasks are always running when a fault comes
      return MessageStatus.SUCCESS
    },
  })
  consumer.on('error', () => {})
  const traffic = new Traffic(ledger, publisher, queue, 'stats')
  try {
    await publisher.start()
    await consumer.start()
    const sending = traffic.paced(3000, 6_000)
    for (let fault = 0; fault < 2; fault++) {
      await sleep(fault === 0 ? 1_500 : 2_000)
      // Sends faster than the window drains while the broker closes both connections: sends are
      // in flight when each close comes.
      let closed: number | undefined
      const closing = node.broker.closeConnections(/^stats-(pub|con)$/, 'stats fault').then((n) => {
        closed = n
      })
      while (closed === undefined) {
        for (let i = 0; i < 3; i++) traffic.send()
        await sleep(5)
      }
      await closing
      assert.equal(closed, 2, 'both connections closed by the broker')
    }
    await sending
    assert.deepEqual(await traffic.settled(40_000), [], 'sends still pending')

    // A memory alarm: the publishing connection is blocked at its next publish.
    await node.broker.setMemoryAlarm(true)
    let alarm = true
    try {
      const blockedSend = traffic.send()
      assert.ok(await eventually(() => pubConnection.stats().blocked, 8_000), 'never blocked')
      await sleep(500)
      await node.broker.setMemoryAlarm(false)
      alarm = false
      await blockedSend.done
    } finally {
      if (alarm) await node.broker.setMemoryAlarm(false)
    }
    const confirmed = new Set(traffic.confirmedIds)
    assert.ok(
      await eventually(() => {
        for (const id of confirmed) if (ledger.deliveriesOf(id).length === 0) return false
        return consumer.running === 0 && consumer.unsettled === 0
      }, 60_000),
      'every confirmed message delivered and settled',
    )
    await sleep(300)
  } finally {
    await consumer.stop()
    await publisher.stop()
    ledger.finalContents(queue, await drainPrivateQueue(node.broker.url, queue))
    await pubConnection.close()
    await conConnection.close()
  }

  const report = ledger.assertSound({ maxDuplicated: 2 * 2 * 100 })
  const p = publisher.stats()
  const c = consumer.stats()
  process.stderr.write(
    `  publisher ${JSON.stringify({ ...p, confirmLatency: undefined })}\n  confirm latency ${JSON.stringify(p.confirmLatency)}\n` +
      `  consumer ${JSON.stringify({ ...c, taskDuration: undefined })}\n  task duration ${JSON.stringify(c.taskDuration)}\n` +
      `  connections pub ${JSON.stringify(pubConnection.stats())} con ${JSON.stringify(conConnection.stats())}\n`,
  )
  // Publisher: one outcome per send, as the ledger saw it.
  assert.equal(p.sends, report.attempted)
  assert.equal(p.confirmed, report.outcomes.confirmed)
  assert.equal(p.returned, report.outcomes.returned)
  assert.equal(p.nacked, report.outcomes.nacked)
  assert.equal(p.timedOut + p.failed, report.outcomes.indeterminate + report.outcomes.rejected)
  assert.equal(p.buffered + p.inFlight, 0)
  // Every send was written once, and once more per republish (none failed: republish is on and the
  // broker answered every write).
  assert.equal(p.timedOut + p.failed, 0)
  assert.equal(p.published, p.sends + p.republished, 'each send written once, and again per republish')
  // Consumer: every delivery the tasks saw, each settled once with an ack (those whose channel had
  // closed dropped as stale).
  assert.equal(c.delivered, report.deliveries)
  assert.equal(c.redelivered, report.redelivered)
  assert.equal(c.acked, report.deliveries)
  assert.equal(c.rejected + c.requeued, 0)
  assert.equal(c.taskDuration.count, report.deliveries)
  assert.equal(c.unsettled + c.running, 0)
  // Connections: two forced closes each, both recovered; one block, over 500 ms long.
  const pub = pubConnection.stats()
  const con = conConnection.stats()
  assert.deepEqual([pub.disconnects, pub.reconnects, con.disconnects, con.reconnects], [2, 2, 2, 2])
  assert.equal(pub.blocks, 1)
  assert.equal(pub.blocked, false)
  assert.ok(pub.blockedMs >= 450, `blocked for ${pub.blockedMs} ms`)
  assert.equal(con.blocks, 0)
  // The faults hit tasks running. Sends in flight are hit only when the broker had not confirmed
  // every write before it closed the connection: most runs, not all (then the line above checks
  // published = sends).
  assert.ok(c.redelivered > 0 && c.staleSettles > 0, 'no delivery was cut short')
  if (p.republished === 0) process.stderr.write('  no send was in flight at either close: none republished\n')
})
