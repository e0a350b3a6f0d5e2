// JSON bodies end to end: sendJson → message.json() keeps every value JSON can carry; a value JSON
// cannot encode is a TypeError at the call with nothing sent; a body that is not JSON is
// INVALID_BODY; and with a consumer `schema` (zod, valibot) only valid messages reach the task,
// with `message.data` the schema's output, while the others are rejected without requeue
// (dead-lettered) and reported by `invalidMessage` without their body.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  Consumer,
  type InvalidMessageInfo,
  LapinError,
  type Logger,
  type Message,
  MessageStatus,
  Publisher,
  type StandardSchemaV1,
} from 'lapinmq'
import * as v from 'valibot'
import { z } from 'zod'
import {
  declareQueue,
  declareQueueWithDeadLetters,
  drainQueue,
  publishRaw,
  queueCount,
  uniqueName,
  waitFor,
} from '../helpers/broker.ts'
import { cleanedUpAfterFile } from '../helpers/fixtures.ts'

const { consumers, queues } = cleanedUpAfterFile()
const publisher = new Publisher({ kind: 'async' })
after(() => publisher.stop())

/** A secret every refused body carries: it must show up in no event and no log line. */
const secret = 'S3CRET-card-4111'

async function freshQueue(prefix: string): Promise<string> {
  const queue = uniqueName(prefix)
  await declareQueue(queue)
  queues.push(queue)
  return queue
}

test('sendJson → message.json(): nested objects, dates, unicode, arrays and numbers round-trip; contentType is application/json', async () => {
  const queue = await freshQueue('json-roundtrip')
  const values: unknown[] = [
    {
      order: {
        id: 'o-1',
        lines: [
          { sku: 'a', qty: 2 },
          { sku: 'b', qty: 1 },
        ],
      },
      paid: true,
      note: null,
    },
    { at: new Date('2024-05-06T07:08:09.123Z') },
    { text: 'héllo 🐇 你好 こんにちは', emoji: '👩‍👩‍👧' },
    [1, 'two', [3, [4]], { five: 5 }],
    { big: Number.MAX_SAFE_INTEGER, negative: -0.5, exp: 1e-7, zero: 0 },
    'a string',
    42,
    null,
  ]
  for (const value of values) await publisher.sendJsonToQueue(queue, value)
  await publisher.sendJsonToQueue(queue, { with: 'options' }, { messageId: 'm-options' })
  await publisher.sendJson(
    '',
    queue,
    { via: 'sendJson' },
    { messageId: 'm-json', contentType: 'application/vnd.x+json' },
  )

  const got: { json: unknown; again: boolean; contentType: unknown; messageId: unknown }[] = []
  const consumer = new Consumer({
    queueName: queue,
    taskFunction: (message) => {
      const json = message.json()
      got.push({
        json,
        again: message.json() === json,
        contentType: message.properties.contentType,
        messageId: message.properties.messageId,
      })
      return MessageStatus.SUCCESS
    },
  })
  consumers.push(consumer)
  await consumer.start()
  await waitFor(() => got.length === values.length + 2, 5000, 'every message')
  const expected = values.map((value) => JSON.parse(JSON.stringify(value)))
  assert.deepEqual(
    got.slice(0, values.length).map((g) => g.json),
    expected,
  )
  assert.equal(
    (got[1]?.json as { at: string } | undefined)?.at,
    '2024-05-06T07:08:09.123Z',
    'a Date arrives as its ISO string',
  )
  assert.ok(
    got.every((g) => g.again),
    'json() parses once: the same value every call',
  )
  assert.deepEqual(
    new Set(got.slice(0, values.length).map((g) => g.contentType)),
    new Set(['application/json']),
  )
  assert.deepEqual(got.at(-2), {
    json: { with: 'options' },
    again: true,
    contentType: 'application/json',
    messageId: 'm-options',
  })
  assert.deepEqual(got.at(-1), {
    json: { via: 'sendJson' },
    again: true,
    contentType: 'application/vnd.x+json',
    messageId: 'm-json',
  })
})

test('a value JSON cannot encode is a TypeError at the call, naming no value, and nothing is sent', async () => {
  const queue = await freshQueue('json-unencodable')
  const cycle: Record<string, unknown> = { secret }
  cycle.self = cycle
  const nested = { list: [{ deep: { secret, n: 12345678901234567890n } }] }
  const bad: [string, unknown][] = [
    ['undefined', undefined],
    [
      'a function',
      function secretFunction() {
        return secret
      },
    ],
    ['a symbol', Symbol(secret)],
    ['a BigInt', 12345678901234567890n],
    ['a nested BigInt', nested],
    ['a cycle', cycle],
  ]
  for (const [what, value] of bad) {
    let thrown: unknown
    try {
      // Not awaited: the throw must come at the call, before any promise.
      void publisher.sendJsonToQueue(queue, value)
    } catch (err) {
      thrown = err
    }
    assert.ok(thrown instanceof TypeError, `${what}: TypeError at the call`)
    assert.match(thrown.message, /cannot be sent as JSON/, what)
    assert.doesNotMatch(
      thrown.message,
      /S3CRET|12345678901234567890|secretFunction/,
      `${what}: the value is not quoted`,
    )
  }
  await publisher.sendJsonToQueue(queue, { marker: true })
  const left = await drainQueue(queue)
  assert.deepEqual(
    left.map((m) => m.content.toString()),
    ['{"marker":true}'],
  )
})

test('message.json() on a body that is not JSON throws LapinError INVALID_BODY, without the body', async () => {
  const queue = await freshQueue('json-malformed')
  // The second is one V8's parser quotes in its own error message.
  await publishRaw(queue, [`{"card": "${secret}", oops`, `${secret} not json`, ''])
  const errors: unknown[] = []
  const consumer = new Consumer({
    queueName: queue,
    taskFunction: (message) => {
      for (let i = 0; i < 2; i++) {
        try {
          message.json()
        } catch (err) {
          errors.push(err)
        }
      }
      return MessageStatus.SUCCESS
    },
  })
  consumers.push(consumer)
  await consumer.start()
  await waitFor(() => errors.length === 6, 5000, 'two failed parses per message')
  for (const err of errors) {
    assert.ok(err instanceof LapinError, 'a LapinError')
    assert.equal(err.code, 'INVALID_BODY')
    assert.doesNotMatch(`${err.message} ${String(err.cause)} ${err.stack}`, /S3CRET|oops/)
  }
})

/** A capturing logger: every line as one string. */
function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = []
  const at = (level: string) => (obj: object, msg?: string) =>
    lines.push(`${level} ${msg} ${JSON.stringify(obj)}`)
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines }
}

const Order = z.object({
  id: z.string(),
  amount: z.number().positive(),
  currency: z.string().default('EUR'),
  email: z.string().transform((s) => s.toLowerCase()),
})

/** What both order schemas give the task. */
interface OrderOut {
  id: string
  amount: number
  currency: string
  email: string
}

/**
 * Publishes a valid, an unparsable and two schema-invalid orders to a queue with a dead-letter
 * queue, consumes them through `schema`, and returns what the task and the events saw.
 */
async function consumeOrders(prefix: string, schema: StandardSchemaV1<unknown, OrderOut>, listen: boolean) {
  const { queue, dlq, queueArgs } = await declareQueueWithDeadLetters(prefix)
  queues.push(queue, dlq)
  await publisher.sendJsonToQueue(
    queue,
    { id: 'o-1', amount: 10, email: 'Ann@Example.COM' },
    { messageId: 'm-ok' },
  )
  await publisher.sendMessageToQueue(queue, `{"id": "o-2", "card": "${secret}"`, {
    messageId: 'm-unparsable',
  })
  await publisher.sendJsonToQueue(
    queue,
    { id: 'o-3', amount: -5, email: 'x@y', card: secret },
    { messageId: 'm-negative' },
  )
  await publisher.sendJson('', queue, { id: 4, amount: 1, email: secret }, { messageId: 'm-wrong-type' })
  await publisher.sendJsonToQueue(
    queue,
    { id: 'o-5', amount: 2.5, currency: 'USD', email: 'b@c' },
    { messageId: 'm-ok-2' },
  )

  const tasks: Message<OrderOut>[] = []
  const events: InvalidMessageInfo[] = []
  const { logger, lines } = capturingLogger()
  const consumer = new Consumer({
    queueName: queue,
    queueArgs,
    schema,
    logger,
    taskFunction: (message) => {
      tasks.push(message)
      return MessageStatus.SUCCESS
    },
  })
  if (listen) consumer.on('invalidMessage', (info) => events.push(info))
  consumers.push(consumer)
  await consumer.start()
  await waitFor(
    async () => tasks.length === 2 && (await queueCount(dlq)) === 3,
    5000,
    'two tasks and three dead letters',
  )
  await sleep(100)
  const deadLetters = await drainQueue(dlq)
  await consumer.stop()
  return { queue, tasks, events, lines, deadLetters }
}

function assertRefusedAndDeadLettered(result: Awaited<ReturnType<typeof consumeOrders>>): void {
  const { queue, tasks, deadLetters } = result
  assert.deepEqual(
    tasks.map((m) => m.properties.messageId),
    ['m-ok', 'm-ok-2'],
    'only the valid messages reach the task',
  )
  assert.deepEqual(
    deadLetters.map((m) => m.properties.messageId).sort(),
    ['m-negative', 'm-unparsable', 'm-wrong-type'],
    'the unparsable and the invalid ones are dead-lettered (rejected without requeue)',
  )
  for (const m of deadLetters) {
    assert.equal(m.fields.redelivered, false, 'never requeued first')
    const death = (m.properties.headers?.['x-death'] as { reason: string; queue: string }[] | undefined)?.[0]
    assert.deepEqual([death?.reason, death?.queue], ['rejected', queue])
  }
}

test('zod schema: valid messages reach the task with data validated (default and transform applied); the others are dead-lettered and reported without their body', async () => {
  const result = await consumeOrders('json-zod', Order, true)
  assertRefusedAndDeadLettered(result)
  const { tasks, events, queue, lines } = result
  assert.deepEqual(tasks[0]?.data, { id: 'o-1', amount: 10, currency: 'EUR', email: 'ann@example.com' })
  assert.deepEqual(tasks[1]?.data, { id: 'o-5', amount: 2.5, currency: 'USD', email: 'b@c' })

  assert.equal(events.length, 3)
  const byId = new Map(events.map((e) => [e.messageId, e]))
  const unparsable = byId.get('m-unparsable')
  assert.equal(unparsable?.reason, 'unparsable')
  assert.deepEqual(unparsable?.issues, [{ path: [], message: 'the body is not valid JSON' }])
  const negative = byId.get('m-negative')
  assert.equal(negative?.reason, 'invalid')
  assert.deepEqual(
    negative?.issues.map((i) => i.path),
    [['amount']],
  )
  assert.equal(negative?.queue, queue)
  assert.equal(negative?.routingKey, queue)
  assert.equal(negative?.exchange, '')
  assert.equal(typeof negative?.deliveryTag, 'number')
  assert.equal(negative?.redelivered, false)
  const wrongType = byId.get('m-wrong-type')
  assert.deepEqual(
    wrongType?.issues.map((i) => i.path),
    [['id']],
  )
  assert.ok(wrongType?.issues.every((i) => typeof i.message === 'string' && i.message.length > 0))
  for (const event of events) {
    assert.deepEqual(Object.keys(event).sort(), [
      'deliveryTag',
      'exchange',
      'issues',
      'messageId',
      'queue',
      'reason',
      'redelivered',
      'routingKey',
    ])
    assert.doesNotMatch(JSON.stringify(event), /S3CRET|o-2|o-3/, 'no body in the event')
  }
  assert.deepEqual(
    lines.filter((l) => l.includes('invalid message')),
    [],
    'with a listener, nothing is logged',
  )
})

test('valibot schema: the same, and without an invalidMessage listener a warning is logged with fields only', async () => {
  const OrderV = v.object({
    id: v.string(),
    amount: v.pipe(v.number(), v.minValue(0.01)),
    currency: v.optional(v.string(), 'EUR'),
    email: v.pipe(v.string(), v.toLowerCase()),
  })
  const result = await consumeOrders('json-valibot', OrderV, false)
  assertRefusedAndDeadLettered(result)
  const { tasks, lines } = result
  assert.deepEqual(tasks[0]?.data, { id: 'o-1', amount: 10, currency: 'EUR', email: 'ann@example.com' })
  const warnings = lines.filter((l) => l.includes('invalid message rejected without requeue'))
  assert.equal(warnings.length, 3, lines.join('\n'))
  for (const line of warnings) {
    assert.match(line, /^warn /)
    assert.match(line, /"messageId":"m-(unparsable|negative|wrong-type)"/)
    assert.match(line, /"deliveryTag":\d+/)
  }
  assert.ok(
    warnings.some((l) => l.includes('"issues":1')),
    warnings.join('\n'),
  )
  assert.ok(
    warnings.every((l) => !l.includes('paths')),
    'no issue paths: they may be the body own keys',
  )
  assert.doesNotMatch(lines.join('\n'), /S3CRET|o-2|o-3/, 'no body in any log line')
})

test('an async schema is awaited before the task; a schema that is not a Standard Schema, or with taskModule, is a TypeError', async () => {
  const queue = await freshQueue('json-async-schema')
  const slowCheck = {
    '~standard': {
      version: 1 as const,
      vendor: 'test',
      validate: async (value: unknown) => {
        await sleep(10)
        const n = (value as { n?: unknown } | null)?.n
        return typeof n === 'number'
          ? { value: { n: n * 2 } }
          : { issues: [{ message: 'n must be a number', path: [{ key: 'n' }] }] }
      },
    },
  }
  await publisher.sendJsonToQueue(queue, { n: 21 })
  await publisher.sendJsonToQueue(queue, { n: 'x' })
  const seen: unknown[] = []
  const events: InvalidMessageInfo[] = []
  const consumer = new Consumer({
    queueName: queue,
    schema: slowCheck,
    taskFunction: (message) => {
      seen.push(message.data)
      return MessageStatus.SUCCESS
    },
  })
  consumer.on('invalidMessage', (info) => events.push(info))
  consumers.push(consumer)
  await consumer.start()
  await waitFor(() => seen.length === 1 && events.length === 1, 5000, 'one task and one event')
  assert.deepEqual(seen, [{ n: 42 }])
  assert.deepEqual(events[0]?.issues, [{ path: ['n'], message: 'n must be a number' }])

  const task = () => MessageStatus.SUCCESS
  assert.throws(
    () => new Consumer({ queueName: 'q', schema: { parse: () => 1 } as never, taskFunction: task }),
    {
      name: 'TypeError',
      message: /Standard Schema/,
    },
  )
  assert.throws(
    () => new Consumer({ queueName: 'q', schema: Order as never, taskModule: './task.ts', workerThreads: 1 }),
    { name: 'TypeError', message: /schema applies to taskFunction only/ },
  )
})

test('a validator that throws or rejects refuses the message without requeue: the task is not called, the error never reported', async () => {
  const { queue, dlq, queueArgs } = await declareQueueWithDeadLetters('json-throwing-schema')
  queues.push(queue, dlq)
  const fragile = {
    '~standard': {
      version: 1 as const,
      vendor: 'test',
      validate: (value: unknown) => {
        const body = value as { items?: unknown[]; async?: boolean }
        // A refinement that assumes a field: it throws on a body without it, quoting the body.
        if (body.async) return Promise.reject(new Error(`cannot read ${JSON.stringify(value)}`))
        return { value: { count: (body.items as unknown[]).length } }
      },
    },
  }
  await publisher.sendJsonToQueue(queue, { items: [1, 2] }, { messageId: 'm-ok' })
  await publisher.sendJsonToQueue(queue, { card: secret }, { messageId: 'm-throws' })
  await publisher.sendJsonToQueue(queue, { card: secret, async: true }, { messageId: 'm-rejects' })
  const seen: unknown[] = []
  const events: InvalidMessageInfo[] = []
  const { logger, lines } = capturingLogger()
  const consumer = new Consumer({
    queueName: queue,
    queueArgs,
    schema: fragile,
    logger,
    taskFunction: (message) => {
      seen.push(message.data)
      return MessageStatus.SUCCESS
    },
  })
  consumer.on('invalidMessage', (info) => events.push(info))
  consumers.push(consumer)
  await consumer.start()
  await waitFor(
    async () => seen.length === 1 && (await queueCount(dlq)) === 2,
    5000,
    'one task, two dead letters',
  )
  await consumer.stop()
  assert.deepEqual(seen, [{ count: 2 }])
  assert.deepEqual(events.map((e) => [e.messageId, e.reason, e.issues]).sort(), [
    ['m-rejects', 'invalid', [{ path: [], message: 'the schema threw while validating the body' }]],
    ['m-throws', 'invalid', [{ path: [], message: 'the schema threw while validating the body' }]],
  ])
  assert.doesNotMatch(lines.join('\n'), /S3CRET/, 'the error, which quotes the body, is not logged')
  assert.equal(await queueCount(queue), 0, 'nothing requeued')
})
