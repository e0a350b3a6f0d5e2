// The broker is down when the application starts. `publisher.start()` and
// `consumer.start()` keep trying (the connection emits `reconnecting` with growing delays) and succeed
// once the broker is up; sends made before are confirmed then. The first connect gives up after
// `recovery.initialMaxRetries` retries with CONNECTION_FAILED, and refused credentials are not
// retried at all.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Connection, Consumer, LapinError, MessageStatus, Publisher } from 'lapinmq'
import { usePrivateBroker } from '../helpers/fault-setup.ts'
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
import { freePort } from '../helpers/private-broker-os.ts'

const node = usePrivateBroker()

type Reconnecting = { attempt: number; delay: number; code: string; at: number }

function recordReconnecting(connection: Connection): Reconnecting[] {
  const events: Reconnecting[] = []
  connection.on('reconnecting', ({ attempt, delay, error }) =>
    events.push({ attempt, delay, code: error.code, at: performance.now() }),
  )
  return events
}

/** Settles to 'resolved' or the rejection, and says whether it has settled yet. */
function watch(promise: Promise<void>): { settled: boolean; result: Promise<unknown> } {
  const w = { settled: false, result: Promise.resolve<unknown>(undefined) }
  w.result = promise.then(
    () => 'resolved',
    (err: unknown) => err,
  )
  void w.result.finally(() => {
    w.settled = true
  })
  return w
}

const confirmTimeout = 30_000
const maxDelay = 2_000

test('broker down at start: start() keeps trying and succeeds once it is up; earlier sends are confirmed', async () => {
  const queue = 'fault-down-at-start'
  await declarePrivateQueue(node.broker.url, queue)
  await node.broker.stopApp()
  let appStopped = true

  const ledger = new Ledger()
  const recovery = { initialDelay: 200, maxDelay, initialMaxRetries: 50 }
  const pubConnection = new Connection({ url: node.broker.url, name: 'fault-down-pub', recovery })
  const conConnection = new Connection({ url: node.broker.url, name: 'fault-down-con', recovery })
  const pubStates = recordStates(pubConnection)
  const conStates = recordStates(conConnection)
  const pubRetries = recordReconnecting(pubConnection)
  const conRetries = recordReconnecting(conConnection)
  const publisher = new Publisher({ kind: 'async', connection: pubConnection, confirmTimeout })
  const delivered = new Set<string>()
  const consumer = new Consumer({
    queueName: queue,
    taskFunction: recordingTask(ledger, queue, delivered),
    connection: conConnection,
  })
  const traffic = new Traffic(ledger, publisher, queue, 'down')
  try {
    const began = performance.now()
    const publisherStarted = watch(publisher.start())
    const consumerStarted = watch(consumer.start())
    // Sends made while the broker is down wait for it.
    for (let i = 0; i < 5; i++) {
      traffic.send()
      await sleep(1_000)
    }
    assert.equal(publisherStarted.settled, false, 'publisher.start() settled while the broker was down')
    assert.equal(consumerStarted.settled, false, 'consumer.start() settled while the broker was down')
    assert.equal(traffic.pending.length, 5, 'the sends made while the broker is down wait')

    await node.broker.startApp()
    appStopped = false
    const upAt = performance.now()
    assert.equal(await publisherStarted.result, 'resolved')
    assert.equal(await consumerStarted.result, 'resolved')
    const startedAfter = performance.now() - upAt
    // The next attempt after the broker is up comes within one (capped) delay.
    assert.ok(
      startedAfter < maxDelay + 3_000,
      `started ${Math.round(startedAfter)} ms after the broker was up`,
    )
    for (let i = 0; i < 5; i++) traffic.send()

    const hung = await traffic.settled(confirmTimeout + 2_000)
    assert.equal(hung.length, 0, `sends still pending: ${hung.map((r) => r.id).join(', ')}`)
    assert.deepEqual(
      traffic.failed.map((r) => [r.id, String(r.error)]),
      [],
      'every send, also those made while the broker was down, is confirmed',
    )
    assert.ok(
      await eventually(() => traffic.confirmedIds.every((id) => delivered.has(id)), 10_000),
      `the consumer got ${delivered.size} of ${traffic.confirmedIds.length} messages`,
    )

    for (const [name, retries, states] of [
      ['publisher', pubRetries, pubStates],
      ['consumer', conRetries, conStates],
    ] as const) {
      // Down ~5 s (plus start_app) with delays 200, 400, 800, 1600, then ~2000 ms: at least 4 retries.
      assert.ok(retries.length >= 4, `${name}: ${retries.length} reconnecting events`)
      assert.deepEqual(
        retries.map((r) => r.attempt),
        retries.map((_, i) => i + 1),
        `${name}: attempts numbered 1, 2, 3...`,
      )
      assert.ok(
        retries.every((r) => r.code === 'CONNECTION_FAILED'),
        `${name}: codes ${retries.map((r) => r.code)}`,
      )
      const delays = retries.map((r) => r.delay)
      // Doubling with ±20% jitter: each of the first four delays is longer than the one before.
      for (let i = 1; i < 4; i++) {
        assert.ok(
          (delays[i] ?? 0) > (delays[i - 1] ?? 0),
          `${name}: delays do not grow: ${delays.join(', ')}`,
        )
      }
      assert.ok(
        delays.every((d) => d <= maxDelay),
        `${name}: a delay above maxDelay ${maxDelay}: ${delays.join(', ')}`,
      )
      const sequence = states.map((s) => s.state)
      assert.ok(inOrder(sequence, ['connecting', 'open']), `${name} states: ${sequence.join(' → ')}`)
      assert.ok(!sequence.includes('reconnecting'), `${name}: never open before, so never 'reconnecting'`)
    }
    const consumers = (await node.broker.listConsumers()).filter((c) => c.queue === queue)
    assert.equal(consumers.length, 1, `consumers on the queue: ${JSON.stringify(consumers)}`)

    await consumer.stop()
    ledger.finalContents(queue, await drainPrivateQueue(node.broker.url, queue))
    ledger.print('broker down at start (stop_app, 5 s of sends, start_app)')
    process.stderr.write(
      `  down ${Math.round(upAt - began)} ms; started ${Math.round(startedAfter)} ms after the broker was up; ` +
        `reconnecting delays (ms): publisher ${pubRetries.map((r) => r.delay).join(', ')}; ` +
        `consumer ${conRetries.map((r) => r.delay).join(', ')}\n`,
    )
    ledger.assertSound()
  } finally {
    // Failed before the broker came back: let the next tests have it.
    if (appStopped) await node.broker.startApp()
    await consumer.stop()
    await publisher.stop({ timeout: 1_000 })
    await pubConnection.close()
    await conConnection.close()
  }
})

test('stop() while start() waits for a broker that is down returns at once; start() and waiting sends reject', async () => {
  await node.broker.stopApp()
  const recovery = { initialDelay: 200, maxDelay, initialMaxRetries: 50 }
  const pubConnection = new Connection({ url: node.broker.url, name: 'fault-stop-early-pub', recovery })
  const conConnection = new Connection({ url: node.broker.url, name: 'fault-stop-early-con', recovery })
  const pubRetries = recordReconnecting(pubConnection)
  const conRetries = recordReconnecting(conConnection)
  const publisher = new Publisher({ kind: 'async', connection: pubConnection, confirmTimeout })
  const consumer = new Consumer({
    queueName: 'fault-stop-early',
    taskFunction: () => MessageStatus.SUCCESS,
    connection: conConnection,
  })
  try {
    const publisherStarted = watch(publisher.start())
    const consumerStarted = watch(consumer.start())
    const send = watch(publisher.sendMessageToQueue('fault-stop-early', 'never published'))
    await sleep(1_500)
    assert.ok(pubRetries.length >= 2 && conRetries.length >= 2, 'both connections are retrying')
    const began = performance.now()
    // A send waits: the publisher gives the broker its stop timeout to come back, then gives up.
    await publisher.stop({ timeout: 500 })
    const publisherMs = performance.now() - began
    await consumer.stop()
    const consumerMs = performance.now() - began - publisherMs
    // Not the minutes the connection would go on retrying.
    assert.ok(
      publisherMs >= 450 && publisherMs < 1_500,
      `publisher.stop() took ${Math.round(publisherMs)} ms`,
    )
    assert.ok(consumerMs < 500, `consumer.stop() took ${Math.round(consumerMs)} ms`)
    for (const [what, w] of [
      ['publisher.start()', publisherStarted],
      ['consumer.start()', consumerStarted],
      ['the waiting send', send],
    ] as const) {
      const result = await w.result
      assert.ok(result instanceof LapinError, `${what}: ${String(result)}`)
      assert.equal(result.code, 'CONNECTION_CLOSED', `${what}: ${String(result)}`)
    }
    // The connections themselves go on trying until closed (others may share them).
    assert.equal(pubConnection.state, 'connecting')
    await pubConnection.close()
    await conConnection.close()
    assert.equal(pubConnection.state, 'closed')
    process.stderr.write(
      `\n  stop() during a start waiting for the broker: publisher ${Math.round(publisherMs)} ms (timeout 500), ` +
        `consumer ${Math.round(consumerMs)} ms\n`,
    )
  } finally {
    await node.broker.startApp()
    await publisher.stop({ timeout: 1_000 })
    await consumer.stop()
    await pubConnection.close()
    await conConnection.close()
  }
})

test('nothing listens: start() rejects CONNECTION_FAILED after initialMaxRetries + 1 attempts, quickly', async () => {
  const url = `amqp://guest:guest@127.0.0.1:${await freePort()}/`
  const recovery = { initialMaxRetries: 2, initialDelay: 50 }
  const pubConnection = new Connection({ url, name: 'fault-nobody-pub', recovery })
  const conConnection = new Connection({ url, name: 'fault-nobody-con', recovery })
  const pubRetries = recordReconnecting(pubConnection)
  const conRetries = recordReconnecting(conConnection)
  const publisher = new Publisher({ kind: 'async', connection: pubConnection })
  const consumer = new Consumer({
    queueName: 'fault-nobody',
    taskFunction: () => MessageStatus.SUCCESS,
    connection: conConnection,
  })
  try {
    const began = performance.now()
    const starting = publisher.start()
    const send = publisher.sendMessageToQueue('fault-nobody', 'waiting for a broker that never comes')
    await assert.rejects(starting, (err: unknown) => {
      assert.ok(err instanceof LapinError, String(err))
      assert.equal(err.code, 'CONNECTION_FAILED')
      assert.match(err.message, /ECONNREFUSED/)
      assert.doesNotMatch(err.message, /guest:guest/)
      return true
    })
    const publisherMs = performance.now() - began
    // The send made while starting fails with it: nothing waits for a connection that gave up.
    await assert.rejects(send, { code: 'CONNECTION_FAILED' })
    await assert.rejects(consumer.start(), { code: 'CONNECTION_FAILED' })
    const totalMs = performance.now() - began
    // 3 attempts: the first, then 2 retries after ~50 and ~100 ms.
    assert.deepEqual(
      pubRetries.map((r) => r.attempt),
      [1, 2],
    )
    assert.deepEqual(
      conRetries.map((r) => r.attempt),
      [1, 2],
    )
    assert.ok(publisherMs < 1_000, `publisher.start() took ${Math.round(publisherMs)} ms`)
    assert.ok(totalMs < 2_000, `both took ${Math.round(totalMs)} ms`)
    assert.equal(pubConnection.state, 'idle')
    process.stderr.write(
      `\n  nothing listening: publisher.start() rejected after ${Math.round(publisherMs)} ms, both after ${Math.round(totalMs)} ms; ` +
        `delays ${pubRetries.map((r) => r.delay).join(', ')} / ${conRetries.map((r) => r.delay).join(', ')} ms\n`,
    )
  } finally {
    await consumer.stop()
    await publisher.stop({ timeout: 1_000 })
    await pubConnection.close()
    await conConnection.close()
  }
})

test('refused credentials: start() rejects ACCESS_REFUSED at once, with no retry', async () => {
  const url = `amqp://guest:wrong-password@127.0.0.1:${node.broker.port}/`
  // Many retries allowed: a refusal must still not be retried.
  const recovery = { initialMaxRetries: 10, initialDelay: 50 }
  const pubConnection = new Connection({ url, name: 'fault-refused-pub', recovery })
  const conConnection = new Connection({ url, name: 'fault-refused-con', recovery })
  const pubRetries = recordReconnecting(pubConnection)
  const conRetries = recordReconnecting(conConnection)
  const publisher = new Publisher({ kind: 'async', connection: pubConnection })
  const consumer = new Consumer({
    queueName: 'fault-refused',
    taskFunction: () => MessageStatus.SUCCESS,
    connection: conConnection,
  })
  try {
    const began = performance.now()
    const results = await Promise.allSettled([publisher.start(), consumer.start()])
    for (const result of results) {
      assert.equal(result.status, 'rejected')
      await assert.rejects(Promise.reject(result.reason), (err: unknown) => {
        assert.ok(err instanceof LapinError, String(err))
        assert.equal(err.code, 'ACCESS_REFUSED')
        assert.equal(err.replyCode, 403)
        assert.doesNotMatch(err.message, /wrong-password/)
        return true
      })
    }
    const ms = performance.now() - began
    assert.equal(pubRetries.length, 0, 'publisher connection retried refused credentials')
    assert.equal(conRetries.length, 0, 'consumer connection retried refused credentials')
    assert.equal(
      (await node.broker.listConnections()).filter((c) => c.name.startsWith('fault-refused')).length,
      0,
    )
    process.stderr.write(
      `\n  refused credentials: both start() rejected after ${Math.round(ms)} ms, 0 retries\n`,
    )
  } finally {
    await consumer.stop()
    await publisher.stop({ timeout: 1_000 })
    await pubConnection.close()
    await conConnection.close()
  }
})
