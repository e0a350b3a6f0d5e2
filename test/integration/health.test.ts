// connection.health() on a private node: ready once open; a frozen broker (SIGSTOP) makes it not
// ready within one heartbeat interval, before the heartbeat timeout drops the connection; ready
// again after the thaw, with the loss in lastError; not ready while the broker blocks publishing;
// not ready once closed. A broker-initiated close (320 CONNECTION_FORCED) is logged at info.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Connection, type ConnectionHealth, Consumer, MessageStatus, Publisher } from 'lapinmq'
import { usePrivateBroker } from '../helpers/fault-setup.ts'
import { declarePrivateQueue, eventually } from '../helpers/fault-traffic.ts'

const node = usePrivateBroker()

const heartbeat = 2 // seconds
/** Time past one heartbeat the detection may take: the poll below, the SIGSTOP itself. */
const slack = 150
const recovery = { initialDelay: 100, maxDelay: 1_000 }
const connectionTimeout = 3_000

/** Polls health() every 10 ms until `check` holds; the ms it took, or undefined after `timeoutMs`. */
async function until(
  connection: Connection,
  check: (h: ConnectionHealth) => boolean,
  timeoutMs: number,
): Promise<number | undefined> {
  const start = performance.now()
  while (performance.now() - start < timeoutMs) {
    if (check(connection.health())) return performance.now() - start
    await sleep(10)
  }
  return undefined
}

test('frozen broker: not ready within one heartbeat, ready again after recovery with lastError set', async () => {
  const connection = new Connection({
    url: node.broker.url,
    heartbeat,
    recovery,
    connectionTimeout,
    name: 'health-freeze',
  })
  const idle = connection.health()
  assert.deepEqual(
    { state: idle.state, ready: idle.ready, blocked: idle.blocked, lastError: idle.lastError },
    { state: 'idle', ready: false, blocked: false, lastError: undefined },
  )
  let frozen = false
  try {
    await connection.connect()
    const open = connection.health()
    assert.equal(open.state, 'open')
    assert.equal(open.ready, true)
    assert.equal(open.lastError, undefined)
    assert.ok(open.since >= idle.since && open.since <= Date.now())
    // An idle connection hears only the broker's heartbeats: ready all along, no false alarm.
    const flapped = await until(connection, (h) => !h.ready, 3 * heartbeat * 1000)
    assert.equal(flapped, undefined, 'not ready on a healthy idle connection')

    const disconnected = new Promise<void>((resolve) => connection.once('disconnected', () => resolve()))
    const freezing = performance.now()
    await node.broker.freeze()
    frozen = true
    // Measured from before the SIGSTOP: the freeze began at most this long ago.
    const notReady =
      (await until(connection, (h) => !h.ready, 5 * heartbeat * 1000)) === undefined
        ? undefined
        : performance.now() - freezing
    console.log(
      `not ready ${Math.round(notReady ?? -1)} ms after the freeze (heartbeat ${heartbeat * 1000} ms)`,
    )
    assert.ok(notReady !== undefined, 'never not ready')
    assert.ok(notReady <= heartbeat * 1000 + slack, `not ready after ${Math.round(notReady)} ms`)
    assert.equal(connection.health().state, 'open', 'before the heartbeat timeout drops the connection')

    await disconnected
    const lost = connection.health()
    assert.equal(lost.ready, false)
    assert.ok(lost.state === 'reconnecting', lost.state)
    assert.ok(lost.lastError, 'the loss is kept')
    assert.equal(typeof lost.lastError.code, 'string')
    assert.ok(lost.since > open.since, 'since moved with the state')
    console.log(`lastError after the freeze: ${JSON.stringify(lost.lastError)}`)

    await node.broker.thaw()
    frozen = false
    const back = await until(connection, (h) => h.ready, 30_000)
    assert.ok(back !== undefined, `not ready again: ${JSON.stringify(connection.health())}`)
    const recovered = connection.health()
    assert.equal(recovered.state, 'open')
    assert.ok(recovered.since > lost.since, 'since moved again')
    assert.ok(recovered.lastError, 'lastError stays after recovery')
    assert.doesNotMatch(JSON.stringify(recovered), /guest@|:guest/, 'no password')
  } finally {
    if (frozen) await node.broker.thaw()
    await connection.close()
  }
  const closed = connection.health()
  assert.equal(closed.state, 'closed')
  assert.equal(closed.ready, false)
})

test('a freeze shorter than the heartbeat timeout: not ready, then ready again on the same connection', async () => {
  const connection = new Connection({
    url: node.broker.url,
    heartbeat,
    recovery,
    connectionTimeout,
    name: 'health-short',
  })
  let frozen = false
  try {
    await connection.connect()
    const since = connection.health().since
    await node.broker.freeze()
    frozen = true
    assert.ok(
      (await until(connection, (h) => !h.ready, 2 * heartbeat * 1000)) !== undefined,
      'never not ready',
    )
    await node.broker.thaw()
    frozen = false
    assert.ok((await until(connection, (h) => h.ready, 10_000)) !== undefined, 'not ready again')
    const h = connection.health()
    assert.equal(h.since, since, 'no reconnect: the state never changed')
    assert.equal(h.lastError, undefined)
  } finally {
    if (frozen) await node.broker.thaw()
    await connection.close()
  }
})

test('memory alarm: a publishing connection is blocked and not ready, ready again once unblocked', async () => {
  const queue = 'health-alarm'
  const connection = new Connection({ url: node.broker.url, name: 'health-alarm' })
  const publisher = new Publisher({ kind: 'async', connection, confirmTimeout: 30_000 })
  let alarm = false
  try {
    await declarePrivateQueue(node.broker.url, queue)
    await publisher.start()
    await node.broker.setMemoryAlarm(true)
    alarm = true
    const send = publisher.sendMessageToQueue(queue, 'during the alarm')
    assert.ok(await eventually(() => connection.health().blocked, 10_000), 'never blocked')
    const blocked = connection.health()
    assert.deepEqual([blocked.state, blocked.ready, blocked.blocked], ['blocked', false, true])
    await node.broker.setMemoryAlarm(false)
    alarm = false
    assert.ok(await eventually(() => connection.health().ready, 10_000), 'not ready again')
    const open = connection.health()
    assert.deepEqual([open.state, open.ready, open.blocked], ['open', true, false])
    assert.ok(open.since > blocked.since)
    await send
  } finally {
    if (alarm) await node.broker.setMemoryAlarm(false)
    await publisher.stop()
    await connection.close()
  }
})

test('a broker-initiated close (CONNECTION_FORCED) logs nothing above info; the consumer logs through its child', async () => {
  const queue = 'health-forced'
  const lines: { level: string; bindings: Record<string, unknown>; msg: string | undefined; obj: object }[] =
    []
  const pinoLike = (bindings: Record<string, unknown>) => {
    const at = (level: string) => (obj: object, msg?: string) => {
      lines.push({ level, bindings, msg, obj })
    }
    const logger: Record<string, unknown> = {
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      child: (more: Record<string, unknown>) => pinoLike({ ...bindings, ...more }),
    }
    return logger as { debug: () => void; info: () => void; warn: () => void; error: () => void }
  }
  const connection = new Connection({
    url: node.broker.url,
    recovery,
    name: 'health-forced',
    logger: pinoLike({}),
  })
  const consumer = new Consumer({ queueName: queue, connection, taskFunction: () => MessageStatus.SUCCESS })
  try {
    await declarePrivateQueue(node.broker.url, queue)
    await consumer.start()
    const reconnected = new Promise<void>((resolve) => connection.once('connected', () => resolve()))
    assert.equal(await node.broker.closeConnections('health-forced', 'rolling restart'), 1)
    await reconnected
    assert.equal(connection.health().lastError?.code, 'CONNECTION_FORCED')
    assert.ok(await eventually(() => lines.some((l) => /consumer channel closed/.test(l.msg ?? '')), 5_000))
  } finally {
    await consumer.stop()
    await connection.close()
  }
  if (process.env.H_DEBUG) for (const l of lines) console.log(l.level, l.msg, JSON.stringify(l.obj))
  assert.deepEqual(
    lines.filter((l) => l.level === 'warn' || l.level === 'error'),
    [],
    'nothing above info',
  )
  const channelClosed = lines.find((l) => /consumer channel closed/.test(l.msg ?? ''))
  assert.deepEqual(channelClosed?.bindings, { lapinmq: 'consumer', queue })
  assert.ok(lines.some((l) => l.msg === 'lapinmq disconnected by the broker; recovering'))
})
