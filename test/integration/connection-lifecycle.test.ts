// A connection's life as the docs promise it: `urls` are tried in turn, at the first connect and
// on recovery; recovery gives up after `maxRetries` with one `error` event; `close()` is graceful
// and idempotent, `destroy()` abrupt and idempotent, and `await using` closes (or stops) what it
// holds.
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { after, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Connection, type ConnectionState, type LapinError, type Logger, Publisher } from 'lapinmq'
import {
  brokerUrl,
  closeAdmin,
  declareQueue,
  deleteQueue,
  listConnections,
  queueCount,
  uniqueName,
  waitFor,
} from '../helpers/broker.ts'
import { killIfRunning, spawnTs, type TsChild } from '../helpers/child.ts'
import { TcpProxy } from '../helpers/tcp-proxy.ts'

const queues: string[] = []
after(async () => {
  for (const queue of queues) await deleteQueue(queue)
  await closeAdmin()
})

/** A port on which nothing listens: a connect to it is refused. */
async function deadPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

/** A logger that keeps each line as `level: message`. */
function recordingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = []
  const at =
    (level: string) =>
    (_obj: object, msg?: string): void => {
      lines.push(`${level}: ${msg}`)
    }
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines }
}

async function freshQueue(prefix: string): Promise<string> {
  const queue = uniqueName(prefix)
  queues.push(queue)
  await declareQueue(queue)
  return queue
}

/** The broker's connections named `name` (rabbitmqctl can lag a close by a moment). */
async function brokerConnectionsNamed(name: string): Promise<number> {
  return (await listConnections()).filter((c) => c.name === name).length
}

const quick = { initialDelay: 10, maxDelay: 50 }

describe('urls', () => {
  test('the first URL refuses: the connection goes on to the second and works there', async () => {
    const dead = `amqp://guest:guest@127.0.0.1:${await deadPort()}/`
    const connection = new Connection({
      urls: [dead, brokerUrl],
      urlOrder: 'given',
      name: 'urls-first-dead',
      recovery: quick,
    })
    const retries: LapinError[] = []
    const connected: string[] = []
    connection.on('reconnecting', ({ error }) => retries.push(error))
    connection.on('connected', ({ url }) => connected.push(url))
    const queue = await freshQueue('urls-first-dead')
    const publisher = new Publisher({ kind: 'sync', connection })
    try {
      await publisher.start()
      await publisher.sendMessageToQueue(queue, 'through the second URL')
      assert.deepEqual(
        retries.map((e) => e.code),
        ['CONNECTION_FAILED'],
        'one failed attempt, on the first URL',
      )
      assert.equal(connected.length, 1)
      assert.match(connected[0] ?? '', /:5672\//, 'connected through the second URL')
      assert.equal(await queueCount(queue), 1)
    } finally {
      await publisher.stop()
      await connection.close()
    }
  })

  test("connections given the same urls start at random ones (60 over 3: each gets at least 5); urlOrder 'given' starts at the first", async () => {
    const proxies = await Promise.all([TcpProxy.start(), TcpProxy.start(), TcpProxy.start()])
    const urls = proxies.map((p) => p.url())
    const connections = Array.from({ length: 60 }, (_, i) => new Connection({ urls, name: `spread-${i}` }))
    const given = Array.from(
      { length: 5 },
      (_, i) => new Connection({ urls, urlOrder: 'given', name: `given-${i}` }),
    )
    try {
      await Promise.all(connections.map((c) => c.connect()))
      const spread = proxies.map((p) => p.accepted)
      assert.ok(
        spread.every((n) => n >= 5),
        `connections per URL: ${spread.join(', ')}`,
      )
      assert.equal(
        spread.reduce((a, b) => a + b, 0),
        60,
        'one attempt each: every URL answered',
      )
      await Promise.all(given.map((c) => c.connect()))
      assert.equal(proxies[0]?.accepted, (spread[0] ?? 0) + 5, "urlOrder 'given': all on the first URL")
    } finally {
      await Promise.all([...connections, ...given].map((c) => c.close()))
      for (const p of proxies) await p.close()
    }
  })

  test('the URL in use goes away: recovery moves on to the next URL; node and the connected event name the node reached', async () => {
    const first = await TcpProxy.start()
    const second = await TcpProxy.start()
    const [firstNode, secondNode] = [`127.0.0.1:${first.port}`, `127.0.0.1:${second.port}`]
    const connection = new Connection({
      urls: [first.url(), second.url()],
      urlOrder: 'given',
      name: 'urls-failover',
      recovery: quick,
    })
    connection.on('error', () => {})
    const connects: { node: string; clusterName: string | undefined; recovered: boolean }[] = []
    connection.on('connected', ({ node, clusterName, recovered }) =>
      connects.push({ node, clusterName, recovered }),
    )
    const queue = await freshQueue('urls-failover')
    const publisher = new Publisher({ kind: 'sync', connection })
    try {
      assert.equal(connection.node, undefined, 'no node before the first connect')
      await publisher.start()
      await publisher.sendMessageToQueue(queue, 'via the first')
      assert.deepEqual([first.accepted, second.accepted], [1, 0])
      assert.equal(connection.node, firstNode)
      // The first node goes down for good: it no longer even accepts connections.
      await first.close()
      await publisher.sendMessageToQueue(queue, 'via the second')
      assert.equal(second.accepted, 1, 'recovered through the second URL')
      assert.equal(connection.state, 'open')
      assert.equal(connection.node, secondNode)
      assert.equal(await queueCount(queue), 2)
      assert.equal(connects.length, 2)
      assert.deepEqual(
        connects.map(({ node, recovered }) => ({ node, recovered })),
        [
          { node: firstNode, recovered: false },
          { node: secondNode, recovered: true },
        ],
      )
      assert.ok(
        connects.every((c) => typeof c.clusterName === 'string' && c.clusterName.includes('@')),
        `the broker's cluster name: ${connects.map((c) => c.clusterName).join(', ')}`,
      )
    } finally {
      await publisher.stop()
      await connection.close()
      assert.equal(connection.node, undefined, 'no node once closed')
      await first.close()
      await second.close()
    }
  })
})

test('recovery gives up after maxRetries: maxRetries reconnecting events, then one error event, state closed', async () => {
  const proxy = await TcpProxy.start()
  const maxRetries = 3
  const { logger, lines } = recordingLogger()
  const connection = new Connection({
    url: proxy.url(),
    name: 'max-retries',
    recovery: { ...quick, maxRetries },
    logger,
  })
  const attempts: number[] = []
  const errors: LapinError[] = []
  const states: ConnectionState[] = []
  connection.on('reconnecting', ({ attempt }) => attempts.push(attempt))
  connection.on('error', (error) => errors.push(error))
  connection.on('state', (state) => states.push(state))
  try {
    await connection.connect()
    await proxy.close()
    await waitFor(() => errors.length > 0, 10_000, 'the error event')
    // No further attempt, no second error.
    await sleep(300)
    assert.deepEqual(attempts, [1, 2, 3])
    assert.equal(errors.length, 1)
    assert.equal(errors[0]?.code, 'CONNECTION_CLOSED')
    assert.match(errors[0]?.message ?? '', /gave up after 4 attempts/)
    assert.equal(connection.state, 'closed')
    assert.deepEqual(states, ['connecting', 'open', 'reconnecting', 'closed'])
    assert.ok(lines.includes('warn: lapinmq disconnected'), 'a drop nobody asked for is a warning')
    await assert.rejects(() => connection.connect(), { code: 'CONNECTION_CLOSED' })
  } finally {
    await connection.close()
    await proxy.close()
  }
})

describe('close, destroy, await using', () => {
  test('close() is graceful and idempotent: the broker sees the connection go; later calls resolve', async () => {
    const name = uniqueName('close-twice')
    const { logger, lines } = recordingLogger()
    const connection = new Connection({ name, logger })
    const drops: (LapinError | undefined)[] = []
    connection.on('disconnected', (error) => drops.push(error))
    await connection.connect()
    await waitFor(
      async () => (await brokerConnectionsNamed(name)) === 1,
      10_000,
      'the connection at the broker',
    )
    await Promise.all([connection.close(), connection.close()])
    await connection.close()
    assert.equal(connection.state, 'closed')
    assert.ok(
      drops.every((e) => e === undefined),
      'a close asked for is not reported as an error',
    )
    assert.deepEqual(
      lines.filter((l) => !l.startsWith('debug')),
      ['info: lapinmq connected', 'info: lapinmq connection closed'],
      'a close asked for is logged at info, not as a warning',
    )
    await waitFor(async () => (await brokerConnectionsNamed(name)) === 0, 10_000, 'the broker to drop it')
    await assert.rejects(() => connection.connect(), { code: 'CONNECTION_CLOSED' })
  })

  test('destroy() is abrupt and idempotent: closed at once, never reconnected, close() after it resolves', async () => {
    const name = uniqueName('destroy')
    // A short heartbeat: what destroy() leaves of amqplib's heartbeat timer ends within 3 s (see the
    // test below), so this file's process does not wait for it.
    const connection = new Connection({ name, recovery: quick, heartbeat: 1 })
    const connects: string[] = []
    connection.on('connected', ({ url }) => connects.push(url))
    connection.on('error', () => {})
    const queue = await freshQueue('destroy')
    const publisher = new Publisher({ kind: 'async', connection })
    publisher.on('error', () => {})
    await publisher.start()
    await publisher.sendMessageToQueue(queue, 'before')
    await waitFor(
      async () => (await brokerConnectionsNamed(name)) === 1,
      10_000,
      'the connection at the broker',
    )
    connection.destroy()
    assert.equal(connection.state, 'closed', 'closed synchronously')
    connection.destroy()
    await connection.close()
    await waitFor(async () => (await brokerConnectionsNamed(name)) === 0, 10_000, 'the broker to drop it')
    await sleep(300)
    assert.equal(connects.length, 1, 'no reconnect after destroy()')
    assert.equal(connection.state, 'closed')
    await publisher.stop({ timeout: 500 })
  })

  test('await using closes a connection and stops a publisher at the end of the block', async () => {
    const name = uniqueName('await-using')
    const queue = await freshQueue('await-using')
    let seen: { connection: Connection; publisher: Publisher } | undefined
    {
      await using connection = new Connection({ name })
      await using publisher = new Publisher({ kind: 'sync', connection })
      await publisher.start()
      await publisher.sendMessageToQueue(queue, 'inside the block')
      seen = { connection, publisher }
      assert.equal(connection.state, 'open')
    }
    assert.equal(seen.publisher.state, 'stopped')
    assert.equal(seen.connection.state, 'closed')
    await waitFor(async () => (await brokerConnectionsNamed(name)) === 0, 10_000, 'the broker to drop it')
    assert.equal(await queueCount(queue), 1)
  })
})

let child: TsChild | undefined
after(() => killIfRunning(child))

test('destroy() leaves nothing running: the process exits at once', async () => {
  child = spawnTs('test/fixtures/destroy-then-exit.ts')
  const exited = await Promise.race([child.exited, sleep(3_000).then(() => undefined)])
  assert.ok(exited, `still running 3 s after destroy() (stdout: ${child.lines.join(' ')})`)
  assert.equal(exited.code, 0, child.stderr())
  const ms = Number(/exited (\d+) ms/.exec(child.lines.join('\n'))?.[1])
  assert.ok(ms < 1_000, `exited ${ms} ms after destroy()`)
})
