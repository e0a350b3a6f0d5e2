// One connection of a pool is closed by the broker (320 CONNECTION_FORCED) while every user of the
// pool is publishing and consuming: only the users placed on that connection go through recovery
// (the connection reconnects and their channels open on it again: they do not move), the users of
// the other connection carry on on the same TCP connection without a reopen, and every confirmed
// message is consumed. A private node: the shared broker is never disturbed.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { ConnectionPool, Consumer, type Logger, type Message, MessageStatus, Publisher } from 'lapinmq'
import { usePrivateBroker } from '../helpers/fault-setup.ts'
import { declarePrivateQueue, drainPrivateQueue, eventually } from '../helpers/fault-traffic.ts'

const node = usePrivateBroker()

/**
 * A logger that keeps what a publisher or consumer warns about, and its channel reopening (logged
 * at info when the channel closed with its connection).
 */
function recordingLogger(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = []
  const noop = (): void => {}
  const reopening = (_obj: unknown, msg?: string): void => {
    if (msg?.includes('reopening')) warnings.push(msg)
  }
  return {
    logger: { debug: noop, info: reopening, warn: (_obj, msg) => warnings.push(msg ?? ''), error: noop },
    warnings,
  }
}

test('closing one pooled connection recovers only its users; the others carry on', async () => {
  const { broker } = node
  const name = 'pool-fault'
  const queues = ['pool-fault-0', 'pool-fault-1']
  for (const q of queues) await declarePrivateQueue(broker.url, q)
  const pool = new ConnectionPool({ size: 2, url: broker.url, name, recovery: { initialDelay: 50 } })
  const drops = pool.connections.map(() => 0)
  pool.connections.forEach((c, i) => {
    c.on('disconnected', () => {
      drops[i] = (drops[i] ?? 0) + 1
    })
  })
  const received = new Set<string>()
  const taskFunction = (message: Message) => {
    received.add(String(message.properties.messageId))
    return MessageStatus.SUCCESS
  }
  // Started in this order: consumer 0 and publisher 0 on connection #0, consumer 1 and publisher 1 on #1.
  const users = [0, 1].map((i) => {
    const consumerLog = recordingLogger()
    const publisherLog = recordingLogger()
    const consumer = new Consumer({
      queueName: queues[i] as string,
      taskFunction,
      connection: pool,
      logger: consumerLog.logger,
    })
    const publisher = new Publisher({ kind: 'async', connection: pool, logger: publisherLog.logger })
    return { consumer, publisher, warnings: [consumerLog.warnings, publisherLog.warnings] }
  })
  await users[0]?.consumer.start()
  await users[1]?.consumer.start()
  await users[0]?.publisher.start()
  await users[1]?.publisher.start()
  assert.deepEqual(pool.loads, [2, 2])
  const before = await broker.listConnections()
  const portOf = (rows: typeof before, i: number) => rows.find((c) => c.name === `${name}#${i}`)?.peerPort

  // Both publishers send to both queues, before, during and after the close.
  const confirmed: string[] = []
  const failed: string[] = []
  let sending = true
  const loops = users.map(async (user, i) => {
    for (let n = 0; sending; n++) {
      const id = `${i}-${n}`
      await user.publisher
        .sendMessageToQueue(queues[n % 2] as string, id, { messageId: id })
        .then(() => confirmed.push(id))
        .catch(() => failed.push(id))
      await sleep(2)
    }
  })
  await sleep(300)
  assert.equal(await broker.closeConnections(`${name}#1`), 1)
  assert.ok(
    await eventually(() => pool.connections[1]?.state === 'open' && drops[1] === 1, 15_000),
    'connection #1 back',
  )
  await sleep(300)
  sending = false
  await Promise.all(loops)

  // Connection #1 was dropped and came back; #0 never dropped and is the same TCP connection.
  assert.deepEqual(drops, [0, 1])
  const afterRows = await broker.listConnections()
  assert.equal(portOf(afterRows, 0), portOf(before, 0), 'connection #0 is the same TCP connection')
  assert.notEqual(portOf(afterRows, 1), portOf(before, 1), 'connection #1 is a new TCP connection')
  // Their channels did not move: two on each connection, as before.
  assert.deepEqual(
    afterRows
      .filter((c) => c.name.startsWith(`${name}#`))
      .map((c) => [c.name, c.channels])
      .sort(),
    [
      [`${name}#0`, 2],
      [`${name}#1`, 2],
    ],
  )
  assert.deepEqual(pool.loads, [2, 2])
  // Users on #0 reopened nothing; the consumer on #1 reopened its channel.
  assert.deepEqual(users[0]?.warnings, [[], []])
  assert.ok(
    users[1]?.warnings[0]?.some((w) => w.includes('reopening')),
    JSON.stringify(users[1]?.warnings),
  )

  // Every confirmed message was consumed (a republished one may come twice: a Set).
  assert.ok(
    await eventually(() => confirmed.every((id) => received.has(id)), 15_000),
    'every confirmed message consumed',
  )
  assert.ok(confirmed.length > 100, `only ${confirmed.length} confirmed`)
  assert.deepEqual(failed, [])

  for (const user of users) {
    await user.publisher.stop()
    await user.consumer.stop()
  }
  await pool.close()
  for (const q of queues) assert.deepEqual(await drainPrivateQueue(broker.url, q), [])
})

test('a queue deleted through the pool is declared again by none of its connections after a recovery', async () => {
  const { broker } = node
  const name = 'pool-forget'
  const [kept, deleted] = ['pool-forget-kept', 'pool-forget-deleted']
  const pool = new ConnectionPool({ size: 2, url: broker.url, name, recovery: { initialDelay: 50 } })
  await pool.declare({ queues: [{ name: kept }, { name: deleted }] })
  await pool.deleteQueue(deleted)
  // Both connections lose their link; each declares what it kept again before it is handed back.
  const reconnected = pool.connections.map(
    (c) => new Promise<void>((resolve) => c.once('connected', () => resolve())),
  )
  assert.equal(await broker.closeConnections(new RegExp(`^${name}#`)), 2)
  await Promise.all(reconnected)
  await broker.queueMessages(kept)
  await assert.rejects(broker.queueMessages(deleted))
  await pool.deleteQueue(kept)
  await pool.close()
})
