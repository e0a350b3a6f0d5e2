// stats() counts exactly what happened: every send's outcome on a publisher, every settle and
// retry-ladder move on a consumer, the settle dropped after its channel closed, and a connection's
// loss and recovery. The faults come from an in-process TCP proxy on our own connections.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Connection, Consumer, type Message, MessageStatus, Publisher, RpcClient } from 'lapinmq'
import { declareQueue, publishRaw, queueCount, uniqueName, waitFor } from '../helpers/broker.ts'
import { cleanedUpAfterFile } from '../helpers/fixtures.ts'
import { TcpProxy } from '../helpers/tcp-proxy.ts'

const { consumers, queues } = cleanedUpAfterFile()
const proxies: TcpProxy[] = []
const connections: Connection[] = []
after(async () => {
  for (const c of consumers) await c.stop({ timeout: 1000 })
  for (const c of connections) await c.close()
  for (const p of proxies) await p.close()
})

/** A connection of our own through a proxy (no heartbeats: a paused proxy goes unnoticed). */
async function throughProxy(): Promise<{ proxy: TcpProxy; connection: Connection }> {
  const proxy = await TcpProxy.start()
  proxies.push(proxy)
  const connection = new Connection({ url: proxy.url(), heartbeat: 0, name: uniqueName('stats-conn') })
  connections.push(connection)
  return { proxy, connection }
}

async function queue(prefix: string, args?: Record<string, unknown>): Promise<string> {
  const name = uniqueName(prefix)
  queues.push(name)
  await declareQueue(name, args && { durable: true, arguments: args })
  return name
}

const outcome = (p: Promise<void>): Promise<string> =>
  p.then(
    () => 'confirmed',
    (e: { code: string }) => e.code,
  )

for (const kind of ['sync', 'async'] as const) {
  test(`${kind} publisher: each outcome counted once, published per write, confirm latency per answer`, async () => {
    const ok = await queue(`stats-ok-${kind}`)
    const full = await queue(`stats-full-${kind}`, { 'x-max-length': 0, 'x-overflow': 'reject-publish' })
    const { proxy, connection } = await throughProxy()
    const publisher = new Publisher({ kind, confirmTimeout: 400, connection })
    await publisher.start()
    const seen: string[] = []
    for (let i = 0; i < 5; i++) seen.push(await outcome(publisher.sendMessageToQueue(ok, `ok ${i}`)))
    for (let i = 0; i < 3; i++)
      seen.push(await outcome(publisher.sendMessageToQueue(uniqueName('nowhere'), 'unroutable')))
    for (let i = 0; i < 2; i++) seen.push(await outcome(publisher.sendMessageToQueue(full, 'no room')))
    proxy.pause()
    seen.push(await outcome(publisher.sendMessageToQueue(ok, 'unanswered')))
    proxy.resume()
    seen.push(await outcome(publisher.sendMessageToQueue(ok, 'after')))
    await sleep(100) // the late confirm of the timed-out send: it ends nothing more
    await publisher.stop()
    seen.push(await outcome(publisher.sendMessageToQueue(ok, 'after stop')))
    assert.deepEqual(seen, [
      ...Array(5).fill('confirmed'),
      ...Array(3).fill('UNROUTABLE'),
      ...Array(2).fill('PUBLISH_NACKED'),
      'CONFIRM_TIMEOUT',
      'confirmed',
      'CONNECTION_CLOSED',
    ])
    const stats = publisher.stats()
    assert.deepEqual(
      { ...stats, confirmLatency: stats.confirmLatency.count },
      {
        sends: 13,
        published: 12,
        confirmed: 6,
        returned: 3,
        nacked: 2,
        timedOut: 1,
        failed: 1,
        republished: 0,
        buffered: 0,
        inFlight: 0,
        // Answers received for sends still awaited: not the timed-out one's late confirm.
        confirmLatency: 11,
      },
    )
    assert.ok(stats.confirmLatency.p50 > 0 && stats.confirmLatency.p50 <= stats.confirmLatency.max)
    assert.ok(stats.confirmLatency.max < 400, `max confirm latency ${stats.confirmLatency.max} ms`)
  })
}

test('consumer without a ladder: acked, rejected, requeued, redelivered and task durations counted exactly', async () => {
  const name = await queue('stats-consume')
  const bodies = ['ok', 'ok', 'ok', 'ok', 'drop', 'drop', 'again', 'again', 'throw', 'callback']
  await publishRaw(name, bodies)
  let done = 0
  const consumer = new Consumer({
    queueName: name,
    concurrency: 3,
    requeueBackoff: false,
    taskFunction: async (message) => {
      done++
      const body = message.body.toString()
      if (body === 'drop') return MessageStatus.FAIL_DO_NOT_RETRY
      if (body === 'again' && !message.redelivered) return MessageStatus.FAIL_RETRY_LATER
      if (body === 'throw' && !message.redelivered) throw new Error('task failed')
      if (body === 'callback') {
        setTimeout(message.ack, 20)
        return MessageStatus.HANDLED_VIA_CALLBACK
      }
      await sleep(5)
      return MessageStatus.SUCCESS
    },
  })
  consumers.push(consumer)
  await consumer.start()
  await waitFor(async () => done === 13 && consumer.unsettled === 0, 10_000, 'every delivery settled')
  await sleep(100)
  const stats = consumer.stats()
  assert.deepEqual(
    { ...stats, taskDuration: stats.taskDuration.count },
    {
      delivered: 13,
      redelivered: 3,
      acked: 8,
      rejected: 2,
      requeued: 3,
      retried: 0,
      deadLettered: 0,
      staleSettles: 0,
      running: 0,
      unsettled: 0,
      taskDuration: 13,
    },
  )
  // Tasks that returned SUCCESS slept 5 ms: the median is about that.
  assert.ok(stats.taskDuration.max >= 5, `max task duration ${stats.taskDuration.max} ms`)
  assert.equal(await queueCount(name), 0)
})

test('consumer with a retry ladder: retried and dead-lettered counted once per confirmed move', async () => {
  const name = uniqueName('stats-ladder')
  queues.push(name, `${name}.dead`, `${name}.retry.100`)
  const consumer = new Consumer({
    queueName: name,
    retry: { delays: [100] },
    taskFunction: (message) => {
      const body = message.body.toString()
      if (body === 'dead') return MessageStatus.FAIL_DO_NOT_RETRY
      if (body === 'always') return MessageStatus.FAIL_RETRY_LATER
      return message.attempt === 1 ? MessageStatus.FAIL_RETRY_LATER : MessageStatus.SUCCESS
    },
  })
  consumers.push(consumer)
  await consumer.start()
  await publishRaw(name, ['fail-once', 'dead', 'always'])
  await waitFor(async () => (await queueCount(`${name}.dead`)) === 2, 10_000, 'two dead letters')
  await waitFor(async () => consumer.stats().delivered === 5 && consumer.unsettled === 0, 5_000, 'settled')
  const stats = consumer.stats()
  assert.deepEqual(
    { ...stats, taskDuration: stats.taskDuration.count },
    {
      delivered: 5,
      redelivered: 0,
      // Each move acks its original, and one success.
      acked: 5,
      rejected: 0,
      requeued: 0,
      retried: 2,
      deadLettered: 2,
      staleSettles: 0,
      running: 0,
      unsettled: 0,
      taskDuration: 5,
    },
  )
})

test('a settle after a lost connection is a stale settle; the connection counts the loss and the recovery', async () => {
  const name = await queue('stats-stale')
  const { proxy, connection } = await throughProxy()
  const held: Message[] = []
  const consumer = new Consumer({
    queueName: name,
    connection,
    taskFunction: (message) => {
      if (message.redelivered) return MessageStatus.SUCCESS
      held.push(message)
      return MessageStatus.HANDLED_VIA_CALLBACK
    },
  })
  consumers.push(consumer)
  await consumer.start()
  await publishRaw(name, ['one'])
  await waitFor(async () => held.length === 1, 5_000, 'the first delivery')
  proxy.cut()
  await waitFor(async () => consumer.stats().acked === 1, 10_000, 'the redelivery acked')
  held[0]?.ack() // its channel is gone: dropped
  const stats = consumer.stats()
  assert.equal(stats.delivered, 2)
  assert.equal(stats.redelivered, 1)
  assert.equal(stats.acked, 2)
  assert.equal(stats.staleSettles, 1)
  assert.equal(stats.unsettled, 0)
  assert.deepEqual(connection.stats(), {
    disconnects: 1,
    reconnects: 1,
    blocks: 0,
    blockedMs: 0,
    blocked: false,
  })
})

test('RPC client: replies, timeouts, other failures and late replies counted once each', async () => {
  const name = uniqueName('stats-rpc')
  queues.push(name)
  const server = new Consumer({
    queueName: name,
    taskFunction: async (message) => {
      if (message.body.toString() === 'slow') await sleep(300)
      await message.reply('pong')
      return MessageStatus.SUCCESS
    },
  })
  consumers.push(server)
  await server.start()
  const rpc = new RpcClient({ timeout: 5_000 })
  try {
    for (let i = 0; i < 3; i++) assert.equal((await rpc.call(name, 'ping')).body.toString(), 'pong')
    await assert.rejects(rpc.call(name, 'slow', { timeout: 100 }), { code: 'RPC_TIMEOUT' })
    await assert.rejects(rpc.call(uniqueName('nobody'), 'ping'), { code: 'UNROUTABLE' })
    await assert.rejects(rpc.call(name, 'ping', { signal: AbortSignal.abort() }), { code: 'ABORTED' })
    await waitFor(() => rpc.lateReplies === 1, 5_000, 'the late reply')
    assert.deepEqual(rpc.stats(), {
      calls: 6,
      replies: 3,
      timedOut: 1,
      failed: 2,
      lateReplies: 1,
      pending: 0,
    })
  } finally {
    await rpc.stop()
  }
})
