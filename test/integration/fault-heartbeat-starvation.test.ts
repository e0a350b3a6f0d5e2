// A CPU-bound task starves heartbeats. With a 2 s heartbeat, a task that
// keeps the main thread busy for 8 s stops heartbeats: the broker drops the connection after two
// missed ones, every prefetched message is requeued and the work is done twice; the connection's
// watchdog reports the blocked loop. The same task in worker threads
// (`workerThreads: 2`) leaves the event loop free: the connection stays up, nothing comes back,
// everything is acked. The test process itself is the one blocked (the private node is not).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Connection, Consumer, type LapinError, MessageStatus, Publisher } from 'lapinmq'
import { usePrivateBroker, watchConnection } from '../helpers/fault-setup.ts'
import { declarePrivateQueue, eventually } from '../helpers/fault-traffic.ts'
import { listenToWorkerTasks, workerTaskModule } from '../helpers/worker-tasks.ts'

const node = usePrivateBroker()

const heartbeat = 2 // seconds
const busyMs = 8_000
const recovery = { initialDelay: 100, maxDelay: 1_000 }

function busyLoop(ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) {
    // CPU-bound work on the main thread
  }
}

/** Publishes messages with the given ids and headers on a connection of its own. */
async function publish(queue: string, messages: { id: string; headers: Record<string, unknown> }[]) {
  const connection = new Connection({ url: node.broker.url, name: 'starve-pub' })
  const publisher = new Publisher({ kind: 'async', connection })
  await publisher.start()
  for (const { id, headers } of messages) {
    await publisher.sendMessageToQueue(queue, id, { messageId: id, headers })
  }
  await publisher.stop()
  await connection.close()
}

async function drained(queue: string): Promise<boolean> {
  const { ready, unacked } = await node.broker.queueMessages(queue)
  return ready === 0 && unacked === 0
}

test('an 8 s main-thread task with a 2 s heartbeat: connection lost, every prefetched message redelivered, watchdog fired', async (t) => {
  const queue = 'starve-main'
  const connection = new Connection({ url: node.broker.url, heartbeat, recovery, name: 'starve-main-con' })
  const watch = watchConnection(connection)
  const blocked: { delayMs: number; heartbeatMs: number }[] = []
  connection.on('eventLoopBlocked', (info) => blocked.push(info))
  const errors: LapinError[] = []
  connection.on('error', (e) => errors.push(e))
  const deliveries: { id: string; redelivered: boolean }[] = []
  const consumer = new Consumer({
    queueName: queue,
    connection,
    prefetch: 3,
    taskFunction: (message) => {
      const id = String(message.properties.messageId)
      deliveries.push({ id, redelivered: message.redelivered })
      if (message.headers.busy === true && !message.redelivered) busyLoop(busyMs)
      return MessageStatus.SUCCESS
    },
  })
  consumer.on('error', (e) => errors.push(e))
  try {
    // All three are in the queue first: the broker sends them at once (prefetch 3).
    await declarePrivateQueue(node.broker.url, queue)
    await publish(queue, [
      { id: 'busy', headers: { busy: true } },
      { id: 'quick-1', headers: {} },
      { id: 'quick-2', headers: {} },
    ])
    const t0 = performance.now()
    await consumer.start()
    const ids = ['busy', 'quick-1', 'quick-2']
    const done = await eventually(async () => {
      const redone = deliveries.filter((d) => d.redelivered).map((d) => d.id)
      return ids.every((id) => redone.includes(id)) && drained(queue)
    }, 40_000)
    const took = performance.now() - t0
    // Reported by the watchdog's next check once the loop runs again (every quarter heartbeat).
    await eventually(() => blocked.length > 0, heartbeat * 1000)
    t.diagnostic(
      `deliveries: ${deliveries.map((d) => `${d.id}${d.redelivered ? ' (redelivered)' : ''}`).join(', ')}; ` +
        `disconnects: ${watch.disconnects.length} (${watch.disconnects.map((d) => d.error?.code).join(', ')}); ` +
        `eventLoopBlocked: ${JSON.stringify(blocked)}; all settled after ${Math.round(took)} ms`,
    )
    assert.ok(done, 'every prefetched message came back redelivered, and the queue emptied')
    assert.ok(watch.disconnects.length >= 1, 'the broker dropped the starved connection')
    assert.ok(watch.connects.length >= 2, 'and lapinmq reconnected')
    // Each came back once; what the consumer had read before the loss ran twice (its work done
    // twice): the busy one for sure; one whose frames were still unread when the loop stalled
    // (prefetched, in the socket) ran only on its redelivery.
    for (const id of ids) {
      const runs = deliveries.filter((d) => d.id === id)
      assert.equal(runs.filter((d) => d.redelivered).length, 1, `${id} was redelivered once`)
      assert.ok(runs.length <= 2, `${id} ran at most twice`)
    }
    assert.equal(
      deliveries.filter((d) => d.id === 'busy').length,
      2,
      'busy ran twice: its work was done twice',
    )
    assert.ok(blocked.length >= 1, 'the watchdog reported the blocked loop')
    assert.equal(blocked[0]?.heartbeatMs, heartbeat * 1000)
    assert.ok((blocked[0]?.delayMs ?? 0) >= busyMs - 1_000, `blocked for ${blocked[0]?.delayMs} ms`)
  } finally {
    await consumer.stop()
    await connection.close()
  }
})

test('the same 8 s tasks with workerThreads: 2: connection stays up, nothing redelivered, all acked', async (t) => {
  const queue = 'starve-workers'
  const connection = new Connection({ url: node.broker.url, heartbeat, recovery, name: 'starve-workers-con' })
  const watch = watchConnection(connection)
  const blocked: unknown[] = []
  connection.on('eventLoopBlocked', (info) => blocked.push(info))
  const errors: LapinError[] = []
  connection.on('error', (e) => errors.push(e))
  const tasks = listenToWorkerTasks()
  const consumer = new Consumer({
    queueName: queue,
    connection,
    taskModule: workerTaskModule,
    workerThreads: 2,
  })
  consumer.on('error', (e) => errors.push(e))
  try {
    await consumer.start()
    const t0 = performance.now()
    await publish(queue, [
      { id: 'busy-1', headers: { busyMs } },
      { id: 'busy-2', headers: { busyMs } },
    ])
    const done = await eventually(
      async () => tasks.calls.filter((c) => c.event === 'end').length >= 2 && drained(queue),
      40_000,
    )
    const took = performance.now() - t0
    t.diagnostic(
      `worker calls: ${tasks.calls.map((c) => `${c.event} ${c.messageId} on thread ${c.threadId}`).join(', ')}; both acked after ${Math.round(took)} ms`,
    )
    assert.ok(done, 'both tasks finished and were acked')
    assert.ok(took >= busyMs && took < 2 * busyMs, `the two tasks ran in parallel (${Math.round(took)} ms)`)
    assert.deepEqual(watch.disconnects, [], 'the connection was never lost')
    assert.deepEqual(blocked, [], 'the event loop was never blocked')
    const starts = tasks.calls.filter((c) => c.event === 'start')
    assert.deepEqual(starts.map((c) => c.messageId).sort(), ['busy-1', 'busy-2'], 'each message ran once')
    assert.ok(
      starts.every((c) => !c.redelivered),
      'nothing was redelivered',
    )
    assert.equal(new Set(starts.map((c) => c.threadId)).size, 2, 'on two threads')
    assert.equal(consumer.staleSettles, 0)
    assert.deepEqual(errors, [])
  } finally {
    tasks.close()
    await consumer.stop()
    await connection.close()
  }
})
