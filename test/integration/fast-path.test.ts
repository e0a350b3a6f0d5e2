// The fast path: probed once per connection, on for the amqplib this package is tested with, off
// on demand; and it never writes a frame on a channel or connection that lapinmq has seen begin to
// close. A frame written after a channel's close handshake makes the broker close the whole
// connection (504 CHANNEL_ERROR "expected 'channel.open'", or 503 COMMAND_INVALID), so the races
// below count every connection-level close and read the broker's log for those errors.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  Connection,
  Consumer,
  type FastPath,
  type LapinError,
  type Logger,
  MessageStatus,
  Publisher,
} from 'lapinmq'
import { brokerUrl, closeAdmin, deleteQueue, uniqueName } from '../helpers/broker.ts'
import { usePrivateBroker } from '../helpers/fault-setup.ts'
import { declareInternalExchange, declarePrivateQueue, eventually } from '../helpers/fault-traffic.ts'

const node = usePrivateBroker()
after(closeAdmin)

/** What a connection should report: every part on, unless the run turns the fast path off. */
const fastPathWanted = !(process.env.LAPINMQ_FAST_PATH === '0' || process.env.LAPINMQ_FAST_PATH === 'false')
const allOn: FastPath = { corkedWrites: true, rawPublish: true, rawAck: true }
const allOff: FastPath = { corkedWrites: false, rawPublish: false, rawAck: false }

/** Connection-level errors the broker logs when a client sends on a channel that is not open. */
// RabbitMQ logs reply names in lower case ("channel_error", "command_invalid").
const connectionErrors = /channel_error|command_invalid|expected 'channel\.open'|unexpected_frame/i

function debugLines(): { logger: Logger; lines: { obj: object; msg: string | undefined }[] } {
  const lines: { obj: object; msg: string | undefined }[] = []
  const noop = (): void => {}
  return {
    logger: { debug: (obj, msg) => lines.push({ obj, msg }), info: noop, warn: noop, error: noop },
    lines,
  }
}

/** Records the connection's drops: a drop with an error is the broker closing the whole connection. */
function watchDrops(connection: Connection): (LapinError | undefined)[] {
  const drops: (LapinError | undefined)[] = []
  connection.on('disconnected', (error) => drops.push(error))
  connection.on('error', () => {})
  return drops
}

/** The broker never closed the connection, and its log holds no connection-level error; closes it. */
async function assertNoConnectionError(
  connection: Connection,
  drops: (LapinError | undefined)[],
): Promise<void> {
  assert.deepEqual(drops, [], 'the connection was never closed by the broker')
  assert.equal(connection.state, 'open')
  await connection.close()
  assert.doesNotMatch(await node.broker.logText(), connectionErrors)
}

test('the probe reports every part of the fast path on for the installed amqplib, once, at debug level', async () => {
  const { logger, lines } = debugLines()
  const connection = new Connection({ url: brokerUrl, logger, name: 'fast-path-probe' })
  assert.deepEqual({ ...connection.fastPath }, allOff, 'nothing is on before the first connect')
  await connection.connect()
  assert.deepEqual({ ...connection.fastPath }, fastPathWanted ? allOn : allOff)
  const probed = lines.filter((l) => l.msg === 'lapinmq fast path probed')
  assert.equal(probed.length, 1)
  const logged = (probed[0]?.obj as { fastPath?: FastPath } | undefined)?.fastPath
  assert.deepEqual({ ...logged }, { ...connection.fastPath })
  await connection.close()
})

/** amqplib's channel classes (not exported: reached by path), to count what goes through their methods. */
const require = createRequire(import.meta.url)
const channelModel = require(join(dirname(require.resolve('amqplib')), 'lib', 'channel_model.js')) as {
  Channel: { prototype: Record<string, (...args: unknown[]) => unknown> }
  ConfirmChannel: { prototype: Record<string, (...args: unknown[]) => unknown> }
}

/** Counts calls of amqplib's ConfirmChannel.publish and Channel.ack while `run` runs. */
async function countAmqplibCalls(run: () => Promise<void>): Promise<{ publish: number; ack: number }> {
  const counts = { publish: 0, ack: 0 }
  const { publish } = channelModel.ConfirmChannel.prototype
  const { ack } = channelModel.Channel.prototype
  channelModel.ConfirmChannel.prototype.publish = function (this: unknown, ...args: unknown[]) {
    counts.publish++
    return (publish as (...a: unknown[]) => unknown).apply(this, args)
  }
  channelModel.Channel.prototype.ack = function (this: unknown, ...args: unknown[]) {
    counts.ack++
    return (ack as (...a: unknown[]) => unknown).apply(this, args)
  }
  try {
    await run()
  } finally {
    channelModel.ConfirmChannel.prototype.publish = publish as (...args: unknown[]) => unknown
    channelModel.Channel.prototype.ack = ack as (...args: unknown[]) => unknown
  }
  return counts
}

test('with the fast path on, plain publishes (string headers included) and every ack skip amqplib; other headers take amqplib', async () => {
  const connection = new Connection({ url: brokerUrl, name: 'fast-path-used' })
  const queue = uniqueName('fast-path-used')
  let received = 0
  const stringHeaders = new Map<string, unknown>()
  const consumer = new Consumer({
    queueName: queue,
    connection,
    concurrency: 20,
    taskFunction: async (message) => {
      await sleep(1)
      const body = message.body.toString()
      if (body.startsWith('s')) stringHeaders.set(body, [message.headers, message.properties.deliveryMode])
      received++
      return MessageStatus.SUCCESS
    },
  })
  const publisher = new Publisher({ kind: 'async', connection })
  await consumer.start()
  await publisher.start()
  const counts = await countAmqplibCalls(async () => {
    await Promise.all(Array.from({ length: 300 }, (_, i) => publisher.sendMessageToQueue(queue, `m${i}`)))
    await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        publisher.sendMessageToQueue(queue, `h${i}`, { headers: { n: i } }),
      ),
    )
    await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        publisher.sendMessageToQueue(queue, `s${i}`, {
          persistent: i % 2 === 0,
          headers: { traceparent: `t-${i}`, 'clé 🐇': 'é'.repeat(i) },
        }),
      ),
    )
    assert.ok(
      await eventually(() => received === 310 && consumer.unsettled === 0, 10_000),
      `${received} received`,
    )
  })
  if (fastPathWanted) {
    assert.deepEqual(
      counts,
      { publish: 5, ack: 0 },
      'only the publishes with number headers went through amqplib',
    )
  } else {
    assert.equal(counts.publish, 310, 'every publish went through amqplib')
    assert.ok(counts.ack > 0, 'acks went through amqplib')
  }
  // String headers and the delivery mode arrive as sent either way (AMQP long strings: amqplib
  // hands them over as strings).
  for (let i = 0; i < 5; i++) {
    assert.deepEqual(stringHeaders.get(`s${i}`), [
      { traceparent: `t-${i}`, 'clé 🐇': 'é'.repeat(i) },
      i % 2 === 0 ? 2 : 1,
    ])
  }
  await publisher.stop()
  await consumer.stop()
  await deleteQueue(queue)
  await connection.close()
})

test('fastPath: false turns every part off, and messages still flow both ways', async () => {
  const connection = new Connection({ url: brokerUrl, fastPath: false, name: 'fast-path-off' })
  const queue = uniqueName('fast-path-off')
  const received: string[] = []
  const consumer = new Consumer({
    queueName: queue,
    connection,
    concurrency: 10,
    taskFunction: (message) => {
      received.push(message.body.toString())
      return MessageStatus.SUCCESS
    },
  })
  const publisher = new Publisher({ kind: 'async', connection })
  await consumer.start()
  await publisher.start()
  assert.deepEqual({ ...connection.fastPath }, allOff)
  await Promise.all(Array.from({ length: 500 }, (_, i) => publisher.sendMessageToQueue(queue, `m${i}`)))
  assert.ok(
    await eventually(() => received.length === 500 && consumer.unsettled === 0, 10_000),
    `${received.length} received`,
  )
  await publisher.stop()
  await consumer.stop()
  await deleteQueue(queue)
  await connection.close()
})

test('fastPath rejects a value that is not a boolean', () => {
  assert.throws(() => new Connection({ fastPath: 'no' as unknown as boolean }), TypeError)
})

test('raw publishes racing channel closes (403 from an internal exchange) never touch a closed channel', async () => {
  const url = node.broker.url
  const queue = 'fast-path-race-publish'
  await declarePrivateQueue(url, queue)
  await declareInternalExchange(url, 'fast-path-internal')
  const connection = new Connection({ url, name: 'fast-path-race-publish' })
  const drops = watchDrops(connection)
  const publisher = new Publisher({ kind: 'async', connection, maxInFlight: 500 })
  await publisher.start()
  assert.deepEqual({ ...connection.fastPath }, fastPathWanted ? allOn : allOff)
  const good: Promise<void>[] = []
  const missing: Promise<unknown>[] = []
  for (let i = 0; i < 6000; i++) {
    // Plain sends: both go out from pre-encoded frames. Each send to the internal exchange closes
    // the channel while hundreds of others are being written behind it.
    if (i % 400 === 200) missing.push(publisher.sendMessage('fast-path-internal', 'k', 'x').catch((e) => e))
    else good.push(publisher.sendMessageToQueue(queue, `m${i}`))
    if (i % 100 === 0) await sleep(0)
  }
  const results = await Promise.allSettled(good)
  const failed = results.filter((r) => r.status === 'rejected')
  assert.equal(
    failed.length,
    0,
    `good sends failed: ${failed.map((r) => String((r as PromiseRejectedResult).reason)).slice(0, 3)}`,
  )
  const refused = (await Promise.all(missing)) as LapinError[]
  assert.deepEqual(
    refused.map((e) => e.code),
    Array(15).fill('ACCESS_REFUSED'),
  )
  await publisher.stop()
  await assertNoConnectionError(connection, drops)
})

test('raw acks racing closing consumer channels (stop with tasks still running, queue deleted under the consumer) never touch a closed channel', async () => {
  const url = node.broker.url
  const queue = 'fast-path-race-ack'
  await declarePrivateQueue(url, queue)
  const connection = new Connection({ url, name: 'fast-path-race-ack' })
  const drops = watchDrops(connection)
  const publisher = new Publisher({ kind: 'async', connection })
  await publisher.start()
  let acked = 0
  // Tasks finish in timers, at random times up to 40 ms: past the stop's cancel and its 3 ms wait,
  // so some acks are decided while the channel closes.
  const taskFunction = async (): Promise<MessageStatus> => {
    await sleep(Math.floor(Math.random() * 40))
    acked++
    return MessageStatus.SUCCESS
  }
  let stale = 0
  for (let round = 0; round < 8; round++) {
    await declarePrivateQueue(url, queue)
    await Promise.all(
      Array.from({ length: 400 }, (_, i) => publisher.sendMessageToQueue(queue, `r${round}-${i}`)),
    )
    const consumer = new Consumer({ queueName: queue, connection, concurrency: 100, taskFunction })
    consumer.on('error', () => {})
    await consumer.start()
    await sleep(15 + round * 5)
    if (round % 4 === 3) {
      // The broker cancels the consumer; lapinmq closes that channel while tasks still finish.
      await connection.deleteQueue(queue)
      await sleep(20)
    }
    await consumer.stop({ timeout: 3 })
    stale += consumer.staleSettles
  }
  await sleep(50)
  assert.ok(acked > 0, 'tasks ran')
  assert.ok(stale > 0, `some acks came after their channel began to close (${stale} dropped)`)
  await publisher.stop()
  await assertNoConnectionError(connection, drops)
})

test('raw publishes and acks racing a closing connection (ours, then the broker forcing it) stop at the close and recover', async () => {
  const url = node.broker.url
  const queue = 'fast-path-race-connection'
  await declarePrivateQueue(url, queue)
  for (const how of ['client close', 'broker close'] as const) {
    const connection = new Connection({ url, name: `fast-path-race-${how.replace(' ', '-')}` })
    const drops = watchDrops(connection)
    const publisher = new Publisher({ kind: 'async', connection })
    const consumer = new Consumer({
      queueName: queue,
      connection,
      concurrency: 100,
      taskFunction: async () => {
        await sleep(Math.floor(Math.random() * 4))
        return MessageStatus.SUCCESS
      },
    })
    consumer.on('error', () => {})
    await publisher.start()
    await consumer.start()
    const sends: Promise<unknown>[] = []
    let stopSending = false
    const pump = (async () => {
      for (let i = 0; !stopSending; i++) {
        // Bounded: while the connection is down, sends wait in the buffer.
        if (publisher.waiting > 1000) await sleep(5)
        sends.push(publisher.sendMessageToQueue(queue, `${how}-${i}`).catch((e: unknown) => e))
        if (i % 50 === 0) await sleep(1)
      }
    })()
    await sleep(300)
    if (how === 'client close') {
      await connection.close()
      stopSending = true
      await pump
      const outcomes = await Promise.all(sends)
      const failed = outcomes.filter((o) => o !== undefined) as LapinError[]
      for (const e of failed) assert.equal(e.code, 'CONNECTION_CLOSED', e.message)
      assert.deepEqual(drops, [undefined], 'one drop, the one asked for')
    } else {
      assert.equal(await node.broker.closeConnections(connection.name), 1)
      assert.ok(
        await eventually(() => drops.length === 1 && connection.state === 'open', 20_000),
        'recovered',
      )
      assert.equal(drops[0]?.code, 'CONNECTION_FORCED', 'the only drop is the forced one')
      await sleep(200)
      stopSending = true
      await pump
      await publisher.sendMessageToQueue(queue, 'after-recovery')
      await Promise.all(sends)
      assert.equal(drops.length, 1)
      await publisher.stop()
      await consumer.stop()
      await connection.close()
    }
  }
  assert.doesNotMatch(await node.broker.logText(), connectionErrors)
})
