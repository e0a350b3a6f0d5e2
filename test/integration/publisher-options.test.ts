// What a send's options say is what the consumer gets: AMQP properties and headers arrive as sent,
// messages are persistent unless asked otherwise, and bodies arrive byte for byte.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { closeAdmin, drainQueue } from '../helpers/broker.ts'
import { withQueueAndPublisher } from '../helpers/fixtures.ts'

after(closeAdmin)

test('properties and headers arrive as sent; persistent by default', async () => {
  await withQueueAndPublisher('options', { kind: 'sync' }, async (queue, publisher) => {
    const when = new Date('2024-05-06T07:08:09Z')
    await publisher.sendMessageToQueue(queue, 'full', {
      expiration: 60_000,
      headers: {
        'x-tenant': 'acme',
        attempt: 3,
        ratio: 0.5,
        urgent: true,
        tags: ['a', 'b'],
        nested: { k: 'v' },
      },
      messageId: 'msg-0001',
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      correlationId: 'corr-42',
      replyTo: 'replies',
      timestamp: when,
      type: 'order.created',
      appId: 'billing',
      userId: 'guest',
      priority: 7,
    })
    await publisher.sendMessageToQueue(queue, 'defaults')
    await publisher.sendMessageToQueue(queue, 'transient', { persistent: false })
    await publisher.sendMessageToQueue(queue, 'epoch seconds', { timestamp: 1_700_000_000 })

    const [full, defaults, transient, epoch, ...rest] = await drainQueue(queue)
    assert.equal(rest.length, 0)
    assert.ok(full && defaults && transient && epoch, 'four messages expected')

    const p = full.properties
    assert.equal(full.content.toString(), 'full')
    assert.equal(p.expiration, '60000')
    assert.equal(p.messageId, 'msg-0001')
    assert.equal(p.contentType, 'application/json')
    assert.equal(p.contentEncoding, 'utf-8')
    assert.equal(p.correlationId, 'corr-42')
    assert.equal(p.replyTo, 'replies')
    assert.equal(p.timestamp, when.getTime() / 1000)
    assert.equal(p.type, 'order.created')
    assert.equal(p.appId, 'billing')
    assert.equal(p.userId, 'guest')
    assert.equal(p.priority, 7)
    assert.equal(p.deliveryMode, 2, 'messages are persistent by default')
    assert.deepEqual(p.headers, {
      'x-tenant': 'acme',
      attempt: 3,
      ratio: 0.5,
      urgent: true,
      tags: ['a', 'b'],
      nested: { k: 'v' },
    })

    assert.equal(defaults.properties.deliveryMode, 2, 'messages are persistent by default')
    assert.equal(defaults.properties.expiration, undefined)
    assert.equal(defaults.properties.messageId, undefined)
    assert.equal(transient.properties.deliveryMode, 1, 'persistent: false sends a transient message')
    assert.equal(epoch.properties.timestamp, 1_700_000_000)
  })
})

test('expiration is honoured by the broker: an expired message is gone', async () => {
  await withQueueAndPublisher('options-ttl', { kind: 'async' }, async (queue, publisher) => {
    await publisher.sendMessageToQueue(queue, 'short-lived', { expiration: 1 })
    await publisher.sendMessageToQueue(queue, 'kept', { expiration: 60_000 })
    await new Promise((resolve) => setTimeout(resolve, 50))
    const bodies = (await drainQueue(queue)).map((m) => m.content.toString())
    assert.deepEqual(bodies, ['kept'])
  })
})

test('string, Buffer and Uint8Array bodies arrive byte-identical', async () => {
  await withQueueAndPublisher('options-bodies', { kind: 'async' }, async (queue, publisher) => {
    const text = 'héllo, wörld — 你好 🐇'
    const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
    // A Uint8Array that is a window on a larger buffer: only the window must be sent.
    const backing = new Uint8Array(64).map((_, i) => 200 - i)
    const view = new Uint8Array(backing.buffer, 10, 20)
    const large = Buffer.alloc(300_000, 0xab) // several frames at the default frame size
    await Promise.all([
      publisher.sendMessageToQueue(queue, text),
      publisher.sendMessageToQueue(queue, allBytes),
      publisher.sendMessageToQueue(queue, view),
      publisher.sendMessageToQueue(queue, ''),
      publisher.sendMessageToQueue(queue, large),
    ])
    const got = (await drainQueue(queue)).map((m) => m.content)
    assert.equal(got.length, 5)
    assert.deepEqual(got[0], Buffer.from(text, 'utf8'))
    assert.equal(got[0]?.toString('utf8'), text)
    assert.deepEqual(got[1], allBytes)
    assert.deepEqual(got[2], Buffer.from(backing.subarray(10, 30)))
    assert.equal(got[3]?.length, 0)
    assert.ok(got[4]?.equals(large), 'a 300 kB body did not arrive intact')
  })
})

test('sendMessageToQueue goes through the default exchange; sendMessage("", queue) is the same', async () => {
  await withQueueAndPublisher('options-to-queue', { kind: 'sync' }, async (queue, publisher) => {
    await publisher.sendMessageToQueue(queue, 'via sendMessageToQueue')
    await publisher.sendMessage('', queue, 'via sendMessage')
    const messages = await drainQueue(queue)
    assert.deepEqual(
      messages.map((m) => [m.content.toString(), m.fields.exchange, m.fields.routingKey]),
      [
        ['via sendMessageToQueue', '', queue],
        ['via sendMessage', '', queue],
      ],
    )
  })
})
