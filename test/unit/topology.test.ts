// A topology goes out in dependency order (exchanges, an alternate exchange before the exchange
// naming it, queues, bindings) with its fields mapped to AMQP's arguments; a connection's record
// keeps each declaration once and forgets a refused one. Checked against a fake channel session.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { ChannelSession } from '../../src/amqp/channel-session.ts'
import { LapinError } from '../../src/errors.ts'
import { declareTopology, planTopology, TopologyRecord } from '../../src/topology/topology.ts'

/** A ChannelSession that records the verbs called; `refuse` makes one of them fail like a 406. */
function fakeSession(refuse?: string): { session: ChannelSession; calls: unknown[][] } {
  const calls: unknown[][] = []
  const verb =
    (name: string) =>
    async (...args: unknown[]): Promise<void> => {
      calls.push([name, ...args])
      if (refuse !== undefined && args[0] === refuse) {
        const raw = `Channel closed by server: 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '${refuse}' in vhost '/'"`
        throw new LapinError('PRECONDITION_FAILED', `channel closed by the broker: ${raw}`, {
          replyCode: 406,
          replyText: raw,
        })
      }
    }
  const session = {
    assertExchange: verb('exchange'),
    assertQueue: verb('queue'),
    bindQueue: verb('bindQueue'),
    bindExchange: verb('bindExchange'),
  } as unknown as ChannelSession
  return { session, calls }
}

test('exchanges (alternate exchanges first), then queues, then bindings, with fields mapped to arguments', async () => {
  const plan = planTopology({
    bindings: [
      { exchange: 'events', queue: 'billing', routingKey: 'invoice.*' },
      { exchange: 'events', toExchange: 'audit', routingKey: '#', arguments: { note: 'x' } },
    ],
    queues: [
      {
        name: 'billing',
        type: 'quorum',
        deadLetterExchange: '',
        deadLetterRoutingKey: 'billing.dead',
        messageTtl: 60_000,
        maxLength: 10,
        overflow: 'reject-publish',
        arguments: { 'x-delivery-limit': 5 },
      },
    ],
    exchanges: [
      { name: 'events', type: 'topic', alternateExchange: 'unrouted' },
      { name: 'audit', type: 'fanout', durable: false, internal: true },
      { name: 'unrouted', type: 'fanout', autoDelete: true },
    ],
  })
  const { session, calls } = fakeSession()
  await declareTopology(session, plan)
  assert.deepEqual(calls, [
    ['exchange', 'unrouted', 'fanout', { durable: true, autoDelete: true, internal: false, arguments: {} }],
    [
      'exchange',
      'events',
      'topic',
      { durable: true, autoDelete: false, internal: false, arguments: { 'alternate-exchange': 'unrouted' } },
    ],
    ['exchange', 'audit', 'fanout', { durable: false, autoDelete: false, internal: true, arguments: {} }],
    [
      'queue',
      'billing',
      {
        durable: true,
        exclusive: false,
        autoDelete: false,
        arguments: {
          'x-delivery-limit': 5,
          'x-queue-type': 'quorum',
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': 'billing.dead',
          'x-message-ttl': 60_000,
          'x-max-length': 10,
          'x-overflow': 'reject-publish',
        },
      },
    ],
    ['bindQueue', 'billing', 'events', 'invoice.*', {}],
    ['bindExchange', 'audit', 'events', '#', { note: 'x' }],
  ])
})

test('a refused declaration names itself and keeps the broker code and reason', async () => {
  const plan = planTopology({ queues: [{ name: 'ok' }, { name: 'jobs', type: 'quorum' }] })
  const { session } = fakeSession('jobs')
  await assert.rejects(declareTopology(session, plan), (err: unknown) => {
    assert.ok(err instanceof LapinError)
    assert.equal(err.code, 'PRECONDITION_FAILED')
    assert.equal(err.replyCode, 406)
    assert.equal(
      err.message,
      "could not declare queue 'jobs' (topology.queues[1]): PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'jobs' in vhost '/'",
    )
    return true
  })
})

test("a connection's record keeps each declaration once, the latest, and undoes a refused one", async () => {
  const record = new TopologyRecord()
  const first = planTopology({
    exchanges: [{ name: 'events', type: 'topic' }],
    queues: [{ name: 'billing' }],
    bindings: [{ exchange: 'events', queue: 'billing', routingKey: 'a' }],
  })
  record.add(first)
  record.add(first)
  // Declared again in another call: still once each.
  record.add(planTopology({ queues: [{ name: 'billing' }] }))
  assert.equal(record.size, 3)
  const undo = record.add(
    planTopology({ queues: [{ name: 'billing', type: 'quorum' }, { name: 'more' }], exchanges: [] }),
  )
  assert.equal(record.size, 4)
  undo()
  assert.equal(record.size, 3)
  const { session, calls } = fakeSession()
  await declareTopology(session, record.plan())
  assert.deepEqual(
    calls.map((c) => [c[0], c[1], c[0] === 'queue' ? (c[2] as { arguments: unknown }).arguments : undefined]),
    [
      ['exchange', 'events', undefined],
      ['queue', 'billing', {}],
      ['bindQueue', 'billing', undefined],
    ],
  )
})
