// Topology declared by lapinmq routes as RabbitMQ's exchange types promise: a fanout exchange gives
// every bound queue every message, a topic exchange each binding exactly its share, a headers
// exchange matches on all or any of the binding's headers, an exchange-to-exchange binding routes
// on. Declared through connection.declare(), the Publisher's and the Consumer's `topology` options.
// A queue redeclared with another type rejects PRECONDITION_FAILED naming the argument and the
// declaration; a bad topology throws at the call, naming the field.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  Connection,
  Consumer,
  LapinError,
  type Message,
  MessageStatus,
  Publisher,
  type Topology,
  UnroutableError,
} from 'lapinmq'
import {
  deleteExchange,
  drainQueue,
  queueCount,
  rabbitmqctl,
  uniqueName,
  waitFor,
} from '../helpers/broker.ts'
import { cleanedUpAfterFile } from '../helpers/fixtures.ts'

const { consumers, queues, exchanges } = cleanedUpAfterFile()

/** A task that counts each messageId it gets. */
function counting(seen: Map<string, number>): (message: Message) => MessageStatus {
  return (message) => {
    const id = String(message.properties.messageId)
    seen.set(id, (seen.get(id) ?? 0) + 1)
    return MessageStatus.SUCCESS
  }
}

/** Sends `count` messages with routing key `key` (and `headers`); resolves to how many were returned unroutable. */
async function sendMany(
  publisher: Publisher,
  exchange: string,
  key: string,
  count: number,
  headers?: Record<string, unknown>,
): Promise<number> {
  const outcomes = await Promise.allSettled(
    Array.from({ length: count }, (_, i) =>
      publisher.sendMessage(exchange, key, `${key}-${i}`, {
        messageId: `${key}-${JSON.stringify(headers ?? {})}-${i}`,
        ...(headers ? { headers } : {}),
      }),
    ),
  )
  let returned = 0
  for (const o of outcomes) {
    if (o.status === 'fulfilled') continue
    if (o.reason instanceof UnroutableError) returned++
    else throw o.reason
  }
  return returned
}

test('fanout: three consumers on temporary queues bound to a declared fanout exchange each get all 1,000 messages', async () => {
  const exchange = uniqueName('fanout')
  exchanges.push(exchange)
  const connection = new Connection({ name: 'topology-fanout' })
  const publisher = new Publisher({ kind: 'async', connection })
  try {
    await connection.declare({ exchanges: [{ name: exchange, type: 'fanout', durable: false }] })
    const seen = [new Map<string, number>(), new Map<string, number>(), new Map<string, number>()]
    for (const s of seen) {
      const consumer = new Consumer({
        queueName: '',
        exchange,
        concurrency: 50,
        taskFunction: counting(s),
        connection,
      })
      consumers.push(consumer)
      await consumer.start()
    }
    await publisher.start()
    assert.equal(await sendMany(publisher, exchange, 'any-key', 1_000), 0)
    await waitFor(() => seen.every((s) => s.size === 1_000), 20_000, 'every consumer to get 1,000')
    for (const s of seen) {
      assert.equal(s.size, 1_000)
      assert.ok(
        [...s.values()].every((n) => n === 1),
        'each message once',
      )
    }
  } finally {
    await publisher.stop()
    for (const c of consumers.splice(0)) await c.stop()
    await connection.close()
  }
})

test("topic: bindings 'eu.*', '*.created' and 'audit.#' each get exactly their share of a known mix", async () => {
  const exchange = uniqueName('topic')
  const [eu, created, audit] = [
    uniqueName('topic-eu'),
    uniqueName('topic-created'),
    uniqueName('topic-audit'),
  ]
  exchanges.push(exchange)
  queues.push(eu, created, audit)
  const connection = new Connection({ name: 'topology-topic' })
  const publisher = new Publisher({ kind: 'async', connection })
  try {
    await connection.declare({
      exchanges: [{ name: exchange, type: 'topic' }],
      queues: [{ name: eu }, { name: created }, { name: audit }],
      bindings: [
        { exchange, queue: eu, routingKey: 'eu.*' },
        { exchange, queue: created, routingKey: '*.created' },
        { exchange, queue: audit, routingKey: 'audit.#' },
      ],
    })
    await publisher.start()
    const mix: [string, number][] = [
      ['eu.created', 3], // eu.* and *.created
      ['eu.deleted', 5], // eu.*
      ['us.created', 7], // *.created
      ['audit.eu.created', 11], // audit.# (not *.created: three words)
      ['audit', 13], // audit.# (# matches zero words)
      ['eu.a.b', 2], // none: * is exactly one word
      ['us.deleted', 4], // none
    ]
    const returned = new Map<string, number>()
    for (const [key, count] of mix) returned.set(key, await sendMany(publisher, exchange, key, count))
    assert.deepEqual(Object.fromEntries(returned), {
      'eu.created': 0,
      'eu.deleted': 0,
      'us.created': 0,
      'audit.eu.created': 0,
      audit: 0,
      'eu.a.b': 2,
      'us.deleted': 4,
    })
    await waitFor(async () => (await queueCount(audit)) === 24, 5_000, 'audit.# to hold 24')
    assert.deepEqual(
      { eu: await queueCount(eu), created: await queueCount(created), audit: await queueCount(audit) },
      { eu: 3 + 5, created: 3 + 7, audit: 11 + 13 },
    )
  } finally {
    await publisher.stop()
    await connection.close()
  }
})

test("headers: a binding with x-match 'all' and one with 'any' (declared by the Publisher's topology option)", async () => {
  const exchange = uniqueName('headers')
  const [all, any] = [uniqueName('headers-all'), uniqueName('headers-any')]
  exchanges.push(exchange)
  queues.push(all, any)
  const match = { format: 'pdf', type: 'report' }
  const topology: Topology = {
    exchanges: [{ name: exchange, type: 'headers', durable: false }],
    queues: [
      { name: all, durable: false },
      { name: any, durable: false },
    ],
    bindings: [
      { exchange, queue: all, arguments: { 'x-match': 'all', ...match } },
      { exchange, queue: any, arguments: { 'x-match': 'any', ...match } },
    ],
  }
  const publisher = new Publisher({ kind: 'async', topology })
  try {
    await publisher.start()
    const returned = [
      await sendMany(publisher, exchange, '', 3, { format: 'pdf', type: 'report' }), // both
      await sendMany(publisher, exchange, '', 5, { format: 'pdf', type: 'report', pages: 2 }), // both
      await sendMany(publisher, exchange, '', 7, { format: 'pdf' }), // any
      await sendMany(publisher, exchange, '', 11, { type: 'report', format: 'csv' }), // any
      await sendMany(publisher, exchange, '', 13, { type: 'log' }), // none
    ]
    assert.deepEqual(returned, [0, 0, 0, 0, 13])
    await waitFor(async () => (await queueCount(any)) === 26, 5_000, 'the any queue to hold 26')
    assert.deepEqual({ all: await queueCount(all), any: await queueCount(any) }, { all: 8, any: 26 })
  } finally {
    await publisher.stop()
  }
})

test("headers to a temporary queue: a consumer's bindingArguments ('x-match' all) bind it; a send no binding takes is unroutable", async () => {
  const exchange = uniqueName('headers-temp')
  exchanges.push(exchange)
  const seen = new Map<string, number>()
  const consumer = new Consumer({
    queueName: '',
    exchange,
    exchangeType: 'headers',
    bindingArguments: { 'x-match': 'all', format: 'pdf', type: 'report' },
    taskFunction: counting(seen),
  })
  consumers.push(consumer)
  const publisher = new Publisher({ kind: 'async' })
  try {
    await consumer.start()
    const returned = [
      await sendMany(publisher, exchange, '', 4, { format: 'pdf', type: 'report' }),
      await sendMany(publisher, exchange, '', 6, { format: 'pdf' }),
    ]
    assert.deepEqual(
      returned,
      [0, 6],
      "only the messages with both headers are routed: 'all' reached the broker",
    )
    await waitFor(() => seen.size === 4, 5_000, 'the four matching messages')
  } finally {
    await publisher.stop()
  }
})

test("exchange-to-exchange: a consumer's topology binds 'source' to 'sink', and its queue to 'sink', declared first", async () => {
  const source = uniqueName('e2e-source')
  const sink = uniqueName('e2e-sink')
  const queue = uniqueName('e2e-queue')
  exchanges.push(source, sink)
  queues.push(queue)
  const seen = new Map<string, number>()
  const consumer = new Consumer({
    queueName: queue,
    // sink exists only because the consumer's topology declares it, before the queue is bound to it.
    exchange: sink,
    topology: {
      exchanges: [
        { name: source, type: 'direct' },
        { name: sink, type: 'fanout' },
      ],
      bindings: [{ exchange: source, toExchange: sink, routingKey: 'orders' }],
    },
    taskFunction: counting(seen),
  })
  consumers.push(consumer)
  const publisher = new Publisher({ kind: 'async' })
  try {
    await consumer.start()
    await publisher.start()
    assert.equal(await sendMany(publisher, source, 'orders', 20), 0)
    assert.equal(await sendMany(publisher, source, 'invoices', 4), 4, 'a key the e2e binding does not match')
    await waitFor(() => seen.size === 20, 5_000, '20 messages through source → sink → queue')
    assert.ok([...seen.keys()].every((id) => id.startsWith('orders-')))
  } finally {
    await publisher.stop()
    await consumer.stop()
  }
})

test('a queue declared classic, then quorum, rejects PRECONDITION_FAILED naming x-queue-type and the declaration', async () => {
  const queue = uniqueName('conflict')
  queues.push(queue)
  const connection = new Connection({ name: 'topology-conflict' })
  const errors: LapinError[] = []
  connection.on('error', (e) => errors.push(e))
  try {
    await connection.declare({ queues: [{ name: queue, type: 'classic' }] })
    // Declared twice, kept once, and no conflict with itself.
    await connection.declare({ queues: [{ name: queue, type: 'classic' }] })
    await assert.rejects(
      connection.declare({ exchanges: [], queues: [{ name: queue, type: 'quorum' }] }),
      (err: unknown) => {
        assert.ok(err instanceof LapinError)
        assert.equal(err.code, 'PRECONDITION_FAILED')
        assert.equal(err.replyCode, 406)
        assert.match(err.message, /inequivalent arg 'x-queue-type'/)
        assert.match(
          err.message,
          new RegExp(
            `could not declare queue '${queue.replaceAll('.', '\\.')}' \\(topology\\.queues\\[0\\]\\)`,
          ),
        )
        return true
      },
    )
    // The side channel the 406 closed is replaced: the connection goes on declaring and checking.
    await connection.declare({ queues: [{ name: queue, type: 'classic' }] })
    assert.deepEqual(await connection.checkQueue(queue), { queue, messageCount: 0, consumerCount: 0 })
    // A Consumer whose topology conflicts fails its start() the same way.
    const consumer = new Consumer({
      queueName: queue,
      declareQueue: false,
      topology: { queues: [{ name: queue, type: 'quorum' }] },
      taskFunction: () => MessageStatus.SUCCESS,
      connection,
    })
    consumers.push(consumer)
    await assert.rejects(consumer.start(), { code: 'PRECONDITION_FAILED', message: /x-queue-type/ })
    assert.deepEqual(errors, [])
  } finally {
    await connection.close()
  }
})

test("a stream read from 'first' and from an offset; consumer arguments (consumerTagPrefix, priority) reach the broker", async () => {
  const stream = uniqueName('stream')
  queues.push(stream)
  const connection = new Connection({ name: 'topology-stream' })
  const publisher = new Publisher({ kind: 'sync', connection })
  try {
    await connection.declare({ queues: [{ name: stream, type: 'stream' }] })
    await publisher.start()
    for (let i = 0; i < 10; i++) await publisher.sendMessageToQueue(stream, `s${i}`, { messageId: `s${i}` })
    const fromFirst: string[] = []
    const fromOffset: string[] = []
    const record =
      (into: string[]) =>
      (message: Message): MessageStatus => {
        into.push(message.body.toString())
        return MessageStatus.SUCCESS
      }
    const first = new Consumer({
      queueName: stream,
      queueType: 'stream',
      streamOffset: 'first',
      prefetch: 5,
      taskFunction: record(fromFirst),
      connection,
    })
    const sixth = new Consumer({
      queueName: stream,
      declareQueue: false,
      streamOffset: 5,
      prefetch: 5,
      taskFunction: record(fromOffset),
      connection,
    })
    // Streams take no consumer priority (the broker refuses x-priority): shown on a classic queue.
    const prioritized = new Consumer({
      queueName: '',
      priority: 7,
      consumerTagPrefix: 'topology-priority-',
      taskFunction: () => MessageStatus.SUCCESS,
      connection,
    })
    consumers.push(first, sixth, prioritized)
    await first.start()
    await sixth.start()
    await prioritized.start()
    await waitFor(() => fromFirst.length === 10 && fromOffset.length === 5, 10_000, 'the stream read')
    assert.deepEqual(fromFirst, ['s0', 's1', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9'])
    assert.deepEqual(fromOffset, ['s5', 's6', 's7', 's8', 's9'])
    const listed = await rabbitmqctl(
      'list_consumers',
      'queue_name',
      'consumer_tag',
      'arguments',
      '--formatter',
      'json',
    )
    // Stream consumers do not show in list_consumers (RabbitMQ 3.10): the reads above are their proof.
    const all = JSON.parse(listed) as { queue_name: string; consumer_tag: string; arguments: unknown }[]
    const other = all.find((c) => c.queue_name === prioritized.queueName)
    assert.match(other?.consumer_tag ?? '', /^topology-priority-[0-9a-f-]{36}$/)
    assert.match(JSON.stringify(other?.arguments), /x-priority.*7/)
  } finally {
    await publisher.stop()
    for (const c of consumers.splice(0)) await c.stop()
    await connection.close()
  }
})

test("a Publisher's topology is declared again when its channel reopens: an exchange deleted under it is back for the next send", async () => {
  const exchange = uniqueName('reopen')
  const queue = uniqueName('reopen-queue')
  exchanges.push(exchange)
  queues.push(queue)
  const publisher = new Publisher({
    kind: 'sync',
    topology: {
      exchanges: [{ name: exchange, type: 'fanout', durable: false }],
      queues: [{ name: queue }],
      bindings: [{ exchange, queue }],
    },
  })
  try {
    await publisher.sendMessage(exchange, '', 'one')
    await deleteExchange(exchange)
    // The broker closes the channel (404): this send fails alone, and the reopened channel declares the topology again.
    await assert.rejects(publisher.sendMessage(exchange, '', 'two'), { code: 'NOT_FOUND' })
    await publisher.sendMessage(exchange, '', 'three')
    assert.deepEqual(
      (await drainQueue(queue)).map((m) => m.content.toString()),
      ['one', 'three'],
    )
  } finally {
    await publisher.stop()
  }
})

test('Consumer exchangeType declares its exchange before binding; exclusive keeps a second consumer out', async () => {
  const exchange = uniqueName('exchange-type')
  const queue = uniqueName('exchange-type-queue')
  exchanges.push(exchange)
  queues.push(queue)
  const seen = new Map<string, number>()
  const consumer = new Consumer({
    queueName: queue,
    exchange,
    exchangeType: 'topic',
    bindingKeys: ['invoice.#'],
    exclusive: true,
    taskFunction: counting(seen),
  })
  const second = new Consumer({ queueName: queue, taskFunction: () => MessageStatus.SUCCESS })
  consumers.push(consumer, second)
  const publisher = new Publisher({ kind: 'async' })
  try {
    await consumer.start()
    await assert.rejects(second.start(), { code: 'ACCESS_REFUSED', message: /exclusive/ })
    await publisher.start()
    assert.equal(await sendMany(publisher, exchange, 'invoice.paid.eu', 5), 0)
    assert.equal(await sendMany(publisher, exchange, 'order.paid', 2), 2)
    await waitFor(() => seen.size === 5, 5_000, 'five invoices')
  } finally {
    await publisher.stop()
    await consumer.stop()
  }
})

test('a bad topology throws at the call, naming the field, before anything is sent', (t) => {
  const connection = new Connection({ name: 'topology-validation' })
  // Were a check missing, its declare would connect: the file must still end.
  t.after(() => connection.destroy())
  const bad: [unknown, RegExp, ErrorConstructor][] = [
    [
      { exchanges: [{ name: 'x', type: 'bogus' }] },
      /topology\.exchanges\[0\]\.type must be one of/,
      TypeError,
    ],
    [
      { exchanges: [{ name: 'amq.mine', type: 'topic' }] },
      /topology\.exchanges\[0\]\.name must not start with 'amq\.'/,
      RangeError,
    ],
    [
      { exchanges: [{ name: 'é'.repeat(200), type: 'topic' }] },
      /topology\.exchanges\[0\]\.name must be at most 255 UTF-8 bytes/,
      RangeError,
    ],
    [{ queues: [{ name: '' }] }, /topology\.queues\[0\]\.name must not be empty/, TypeError],
    [{ bindings: [{ exchange: '', queue: 'q' }] }, /bindings\[0\]\.exchange must not be empty/, TypeError],
    [{ bindings: [{ exchange: 'x', queue: '' }] }, /bindings\[0\]\.queue must not be empty/, TypeError],
    [
      { queues: [{ name: 'q', arguments: { 'x-a': { '!': 'nope', value: 1 } } }] },
      /is not a typed AMQP value/,
      TypeError,
    ],
    [
      { queues: [{ name: 'q', messageTtl: -1 }] },
      /topology\.queues\[0\]\.messageTtl must be an integer/,
      RangeError,
    ],
    [{ queues: [{ name: 'q', maxLength: 1.5 }] }, /topology\.queues\[0\]\.maxLength/, RangeError],
    [
      { queues: [{ name: 'q', overflow: 'drop-tail' }] },
      /topology\.queues\[0\]\.overflow must be one of/,
      TypeError,
    ],
    [{ queues: [{ name: 'q', type: 'quorum', durable: false }] }, /a quorum queue is durable/, RangeError],
    [
      { queues: [{ name: 'q', deadLetterRoutingKey: 'dead' }] },
      /deadLetterRoutingKey needs deadLetterExchange/,
      TypeError,
    ],
    [
      { queues: [{ name: 'q', type: 'quorum', arguments: { 'x-queue-type': 'stream' } }] },
      /arguments\['x-queue-type'\] contradicts/,
      TypeError,
    ],
    [
      { queues: [{ name: 'q', arguments: { when: new Date() } }] },
      /topology\.queues\[0\]\.arguments\['when'\] cannot be sent/,
      TypeError,
    ],
    [
      { bindings: [{ exchange: 'e', queue: 'q', toExchange: 'f' }] },
      /topology\.bindings\[0\] must have either queue or toExchange/,
      TypeError,
    ],
    [
      { bindings: [{ exchange: 'e' }] },
      /topology\.bindings\[0\] must have either queue or toExchange/,
      TypeError,
    ],
    [
      { bindings: [{ exchange: 7, queue: 'q' }] },
      /topology\.bindings\[0\]\.exchange must be a string/,
      TypeError,
    ],
    [{ queue: [] }, /unknown field 'queue'/, TypeError],
  ]
  for (const [topology, message, type] of bad) {
    assert.throws(
      () => connection.declare(topology as Topology),
      (err: unknown) => {
        assert.ok(err instanceof type, `${String(err)} is a ${type.name}`)
        assert.match((err as Error).message, message)
        return true
      },
    )
  }
  // The same checks in the options, in the constructors.
  assert.throws(
    () => new Publisher({ kind: 'async', topology: { queues: [{ name: 'q', maxLength: -2 }] } }),
    {
      name: 'RangeError',
      message: /topology\.queues\[0\]\.maxLength/,
    },
  )
  const task = (): MessageStatus => MessageStatus.SUCCESS
  const consumerBad: [Record<string, unknown>, RegExp][] = [
    [{ queueType: 'lazy' }, /queueType must be 'classic', 'quorum' or 'stream'/],
    [{ queueType: 'quorum', queueArgs: { 'x-queue-type': 'classic' } }, /queueType 'quorum' contradicts/],
    [{ queueName: '', queueType: 'stream' }, /a stream queue cannot be temporary/],
    [{ exchangeType: 'topic' }, /exchangeType needs exchange/],
    [{ exchange: 'x', exchangeType: 'fan' }, /exchangeType must be/],
    [{ priority: 1.5 }, /priority must be an integer/],
    [{ queueType: 'stream', priority: 1 }, /priority is not available on a stream/],
    [{ streamOffset: 'start' }, /streamOffset must be 'first', 'last', 'next'/],
    [{ streamOffset: -1 }, /streamOffset must be an integer/],
    [{ consumerTagPrefix: 'x'.repeat(201) }, /consumerTagPrefix must be at most 200/],
    [{ exclusive: 'yes' }, /exclusive must be a boolean/],
    [{ topology: { exchanges: [{ name: 'x' }] } }, /topology\.exchanges\[0\]\.type/],
  ]
  for (const [options, message] of consumerBad) {
    assert.throws(() => new Consumer({ queueName: 'q', taskFunction: task, ...options }), { message })
  }
  assert.equal(connection.state, 'idle', 'nothing was sent: the connection never connected')
})
