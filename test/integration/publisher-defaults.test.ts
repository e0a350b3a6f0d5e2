// A publisher's `defaults` are send options under each send's own: events to an exchange nobody is
// bound to yet resolve with `mandatory: false`, properties and headers given once arrive on every
// message, a send's own option wins (headers merged key by key), and bad defaults are refused at
// construction as a send's options are.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { LapinError, Publisher, type SendDefaults, type SendOptions } from 'lapinmq'
import { declareExchange, declareQueue, drainQueue, uniqueName } from '../helpers/broker.ts'
import { cleanedUpAfterFile } from '../helpers/fixtures.ts'

const { queues, exchanges } = cleanedUpAfterFile()

test('defaults { mandatory: false }: events to a topic exchange with no bound queue resolve; a send asking mandatory: true is UNROUTABLE', async () => {
  const exchange = uniqueName('defaults-events')
  await declareExchange(exchange, 'topic')
  exchanges.push(exchange)
  const publisher = new Publisher({ kind: 'async', defaults: { mandatory: false } })
  try {
    await publisher.start()
    await publisher.sendMessage(exchange, 'order.created', 'nobody listens yet')
    await publisher.sendJson(exchange, 'order.paid', { id: 1 })
    await publisher.sendMessage(exchange, 'order.created', 'with options', { messageId: 'm-1' })
    await assert.rejects(
      publisher.sendMessage(exchange, 'order.created', 'must be routed', { mandatory: true }),
      (err: unknown) => err instanceof LapinError && err.code === 'UNROUTABLE',
    )
  } finally {
    await publisher.stop()
  }
  // Without defaults the same event is returned: mandatory is the default.
  const plain = new Publisher({ kind: 'sync' })
  try {
    await assert.rejects(
      plain.sendMessage(exchange, 'order.created', 'x'),
      (err: unknown) => err instanceof LapinError && err.code === 'UNROUTABLE',
    )
  } finally {
    await plain.stop()
  }
})

test('contentType, headers, persistent and appId defaults arrive; a send’s own option wins, headers merged', async () => {
  const queue = uniqueName('defaults-props')
  await declareQueue(queue)
  queues.push(queue)
  const defaults: SendDefaults = {
    contentType: 'text/plain',
    headers: { app: 'billing', tenant: 'acme' },
    persistent: false,
    appId: 'billing-service',
  }
  const publisher = new Publisher({ kind: 'sync', defaults })
  // The defaults were copied at construction: a later change by the caller is not seen.
  ;(defaults.headers as Record<string, unknown>).app = 'changed'
  defaults.contentType = 'changed/too'
  try {
    await publisher.sendMessageToQueue(queue, 'no options')
    await publisher.sendMessageToQueue(queue, 'own options', {
      contentType: 'application/xml',
      headers: { tenant: 'globex', attempt: 2 },
      persistent: true,
    })
    // A caller without exactOptionalPropertyTypes (or plain JavaScript) may leave options undefined.
    const unset = { contentType: undefined, headers: undefined, messageId: 'm-3' } as unknown as SendOptions
    await publisher.sendMessageToQueue(queue, 'undefined is not set', unset)
    await publisher.sendJsonToQueue(queue, { json: true })
  } finally {
    await publisher.stop()
  }
  const [noOptions, own, undefinedOptions, json, ...rest] = await drainQueue(queue)
  assert.equal(rest.length, 0)
  assert.ok(noOptions && own && undefinedOptions && json, 'four messages expected')

  assert.equal(noOptions.properties.contentType, 'text/plain')
  assert.deepEqual(noOptions.properties.headers, { app: 'billing', tenant: 'acme' })
  assert.equal(noOptions.properties.deliveryMode, 1, 'persistent: false by default')
  assert.equal(noOptions.properties.appId, 'billing-service')

  assert.equal(own.properties.contentType, 'application/xml')
  assert.deepEqual(own.properties.headers, { app: 'billing', tenant: 'globex', attempt: 2 })
  assert.equal(own.properties.deliveryMode, 2, 'the send’s persistent: true wins')
  assert.equal(own.properties.appId, 'billing-service')

  assert.equal(undefinedOptions.properties.contentType, 'text/plain')
  assert.deepEqual(undefinedOptions.properties.headers, { app: 'billing', tenant: 'acme' })
  assert.equal(undefinedOptions.properties.messageId, 'm-3')

  assert.equal(json.properties.contentType, 'application/json', 'sendJson’s content type beats the default')
  assert.deepEqual(json.properties.headers, { app: 'billing', tenant: 'acme' })
  assert.equal(json.content.toString(), '{"json":true}')
})

test('bad defaults are refused at construction, like a send’s options', () => {
  const make = (defaults: unknown) => () =>
    new Publisher({ kind: 'async', defaults: defaults as SendDefaults })
  assert.throws(make({ contentTyp: 'text/plain' }), {
    name: 'TypeError',
    message: "unknown send option 'contentTyp' (did you mean 'contentType'?)",
  })
  assert.throws(make({ mandatroy: false }), { name: 'TypeError', message: /did you mean 'mandatory'/ })
  assert.throws(make({ callbacks: { ackCallback: () => {} } }), {
    name: 'TypeError',
    message: /defaults cannot hold callbacks/,
  })
  assert.throws(make({ persistent: 'yes' }), {
    name: 'TypeError',
    message: /persistent must be true or false/,
  })
  assert.throws(make({ priority: 300 }), { name: 'RangeError', message: /priority/ })
  assert.throws(make({ headers: ['a'] }), { name: 'TypeError', message: /headers must be a plain object/ })
  assert.throws(make('mandatory'), { name: 'TypeError', message: /defaults must be an object/ })
  // A send's own options are still checked on top of the defaults.
  const publisher = new Publisher({ kind: 'async', defaults: { mandatory: false } })
  assert.throws(
    () => publisher.sendMessageToQueue('q', 'x', { expiry: 5 } as never),
    /did you mean 'expiration'/,
  )
  assert.throws(
    () => publisher.sendMessageToQueue('q', 'x', { headers: 'h' } as never),
    /headers must be a plain object/,
  )
})
