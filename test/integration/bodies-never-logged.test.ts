// Message bodies are never logged: a logger that captures everything, at every level, sees no body
// through confirms, returns, nacks, a channel error, a connection cut with sends in doubt, tasks that
// throw, return junk or reject, publish callbacks that throw, and messages a consumer's schema refuses.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Connection, Consumer, type Logger, type Message, MessageStatus, Publisher } from 'lapinmq'
import * as v from 'valibot'
import { declareExchange, declareQueue, queueCount, uniqueName, waitFor } from '../helpers/broker.ts'
import { cleanedUpAfterFile } from '../helpers/fixtures.ts'
import { TcpProxy } from '../helpers/tcp-proxy.ts'

const { queues, exchanges } = cleanedUpAfterFile()

/** Every string a logged value holds: strings, Buffers as text and hex, errors' message, stack and cause. */
function texts(value: unknown, out: string[] = [], seen = new WeakSet<object>()): string[] {
  if (typeof value === 'string') out.push(value)
  else if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
    out.push(String(value))
  } else if (value instanceof Uint8Array) {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength)
    out.push(bytes.toString('utf8'), bytes.toString('hex'), bytes.toString('base64'))
  } else if (typeof value === 'object' && value !== null && !seen.has(value)) {
    seen.add(value)
    if (value instanceof Error) texts([value.message, value.stack, value.cause], out, seen)
    for (const key of Reflect.ownKeys(value)) {
      texts(key, out, seen)
      texts((value as Record<string | symbol, unknown>)[key], out, seen)
    }
  }
  return out
}

/** A logger that keeps every call, at every level, as the strings it holds. */
function capturingLogger(): {
  logger: Logger
  lines: { level: string; msg: string | undefined; texts: string[] }[]
} {
  const lines: { level: string; msg: string | undefined; texts: string[] }[] = []
  const at =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, msg, texts: texts([obj, msg]) })
    }
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines }
}

test('no log line at any level holds a message body, through failures, returns and a reconnect', async () => {
  const body = `secret-body-${randomUUID()}`
  const forms = [body, Buffer.from(body).toString('hex'), Buffer.from(body).toString('base64')]
  const { logger, lines } = capturingLogger()
  const proxy = await TcpProxy.start()
  const connection = new Connection({
    url: proxy.url(),
    name: 'bodies-never-logged',
    logger,
    recovery: { initialDelay: 10, maxDelay: 50 },
  })
  const queue = uniqueName('no-body-logs')
  const full = uniqueName('no-body-logs-full')
  const exchange = uniqueName('no-body-logs-unbound')
  queues.push(queue, full)
  exchanges.push(exchange)
  await declareQueue(queue)
  await declareQueue(full, {
    durable: true,
    arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' },
  })
  await declareExchange(exchange, 'direct')

  const publisher = new Publisher({ kind: 'async', connection })
  const outcome = (p: Promise<void>): Promise<string> =>
    p.then(
      () => 'confirmed',
      (e: { code?: string }) => e.code ?? String(e),
    )
  // Each delivery fails once in another way, then succeeds.
  const failures: ((message: Message) => unknown)[] = [
    () => {
      throw new Error('task failed')
    },
    () => Promise.reject(new Error('task rejected')),
    () => 'junk',
    (message) => {
      // Settled later, twice: the second settle is dropped.
      setTimeout(() => {
        message.rejectRetry()
        message.ack()
      }, 10)
      return MessageStatus.HANDLED_VIA_CALLBACK
    },
  ]
  let deliveries = 0
  const consumer = new Consumer({
    queueName: queue,
    connection,
    taskFunction: (message) => {
      const fail = failures[deliveries++]
      return (fail ? fail(message) : MessageStatus.SUCCESS) as MessageStatus
    },
  })
  try {
    await consumer.start()
    await publisher.start()
    const outcomes = [
      await outcome(publisher.sendMessageToQueue(queue, body)),
      await outcome(publisher.sendMessage(exchange, 'nobody', body)),
      await outcome(publisher.sendMessageToQueue(full, body)),
      await outcome(publisher.sendMessage(uniqueName('missing-exchange'), 'k', body)),
      await outcome(
        publisher.sendMessageToQueue(queue, body, {
          callbacks: {
            ackCallback: () => {
              throw new Error('ack callback failed')
            },
          },
        }),
      ),
    ]
    assert.deepEqual(outcomes, ['confirmed', 'UNROUTABLE', 'PUBLISH_NACKED', 'NOT_FOUND', 'confirmed'])

    // Sends in doubt when the connection is cut: republished after the reconnect.
    proxy.pause('toClient')
    const inDoubt = Array.from({ length: 5 }, () => outcome(publisher.sendMessageToQueue(queue, body)))
    await sleep(100)
    proxy.cut()
    proxy.resume()
    assert.deepEqual(await Promise.all(inDoubt), Array(5).fill('confirmed'))
    await waitFor(async () => deliveries >= 11 && (await queueCount(queue)) === 0, 10_000, 'every delivery')
    await sleep(200)
  } finally {
    await consumer.stop({ timeout: 2_000 })
    await publisher.stop({ timeout: 2_000 })
    await connection.close()
    await proxy.close()
  }
  const levels = new Set(lines.map((l) => l.level))
  assert.ok(lines.length >= 10 && levels.has('warn') && levels.has('debug'), 'the failures were logged')
  const leaks = lines.filter((l) => l.texts.some((t) => forms.some((f) => t.includes(f))))
  assert.deepEqual(
    leaks.map((l) => `${l.level}: ${l.msg}`),
    [],
    'log lines holding a body',
  )
})

test('a task that returns its message body by mistake does not get the body logged', async () => {
  const body = `secret-body-${randomUUID()}`
  const { logger, lines } = capturingLogger()
  const queue = uniqueName('no-body-logs-junk')
  queues.push(queue)
  await declareQueue(queue)
  let deliveries = 0
  const consumer = new Consumer({
    queueName: queue,
    logger,
    taskFunction: (message) => (deliveries++ === 0 ? message.body : MessageStatus.SUCCESS) as MessageStatus,
  })
  const publisher = new Publisher({ kind: 'sync' })
  try {
    await consumer.start()
    await publisher.start()
    await publisher.sendMessageToQueue(queue, body)
    await waitFor(() => deliveries === 2, 5_000, 'the redelivery')
  } finally {
    await consumer.stop()
    await publisher.stop()
  }
  assert.ok(lines.length > 0, 'the junk status was logged')
  const leaks = lines.filter((l) => l.texts.some((t) => t.includes(body)))
  assert.deepEqual(
    leaks.map((l) => `${l.level}: ${l.msg}`),
    [],
    'log lines holding a body',
  )
})

test('a consumer with a schema logs the messages it refuses without their body, even where the schema library quotes it', async () => {
  const secret = `secret-body-${randomUUID()}`
  const { logger, lines } = capturingLogger()
  const queue = uniqueName('no-body-logs-schema')
  queues.push(queue)
  await declareQueue(queue)
  // valibot quotes a value it refuses in its issue message, and its issue paths carry the whole input.
  const schema = v.object({ id: v.number() })
  let tasks = 0
  const consumer = new Consumer({
    queueName: queue,
    logger,
    schema,
    taskFunction: () => {
      tasks++
      return MessageStatus.SUCCESS
    },
  })
  const publisher = new Publisher({ kind: 'sync' })
  try {
    await consumer.start()
    await publisher.start()
    await publisher.sendJsonToQueue(queue, { id: secret })
    await publisher.sendMessageToQueue(queue, `${secret} is not JSON`)
    await publisher.sendJsonToQueue(queue, { id: 1, note: secret })
    await waitFor(() => tasks === 1, 5_000, 'the valid message')
    await waitFor(async () => (await queueCount(queue)) === 0, 5_000, 'the refused ones gone')
  } finally {
    await consumer.stop()
    await publisher.stop()
  }
  const refusals = lines.filter((l) => l.msg?.includes('invalid message'))
  assert.equal(refusals.length, 2, 'both refusals were logged')
  const leaks = lines.filter((l) => l.texts.some((t) => t.includes(secret)))
  assert.deepEqual(
    leaks.map((l) => `${l.level}: ${l.msg}`),
    [],
    'log lines holding a body',
  )
})
