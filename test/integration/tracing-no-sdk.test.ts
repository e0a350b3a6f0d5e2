// With @opentelemetry/api installed and no SDK registered (its no-op tracer provider), lapinmq
// starts no span and injects nothing: a message arrives without a traceparent, and a send keeps
// the shared plain options that the fast path sends from pre-encoded frames.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { Connection, Consumer, MessageStatus, Publisher } from 'lapinmq'
import { otel } from '../../src/telemetry/otel.ts'
import { tracer } from '../../src/telemetry/tracing.ts'
import {
  brokerUrl,
  closeAdmin,
  declareQueue,
  deleteQueue,
  drainQueue,
  uniqueName,
  waitFor,
} from '../helpers/broker.ts'

const q = uniqueName('trace.no-sdk')

after(async () => {
  await deleteQueue(q).catch(() => undefined)
  await closeAdmin()
})

test('API installed, no SDK: no span, no traceparent header', async () => {
  await declareQueue(q)
  const connection = new Connection({ url: brokerUrl, name: 'tracing-no-sdk' })
  const publisher = new Publisher({ kind: 'sync', connection })
  await publisher.start()
  assert.ok(otel(), 'the API was loaded by start()')
  assert.equal(tracer(), undefined, 'no tracer while the provider is the no-op one')
  await publisher.sendMessageToQueue(q, 'x')
  const [message] = await drainQueue(q)
  assert.ok(message)
  assert.equal(message.properties.headers?.traceparent, undefined)
  let processed = 0
  const consumer = new Consumer({
    queueName: q,
    connection,
    taskFunction: () => {
      processed++
      return MessageStatus.SUCCESS
    },
  })
  await consumer.start()
  await publisher.sendMessageToQueue(q, 'y')
  await waitFor(() => processed === 1)
  await consumer.stop()
  await publisher.stop()
  await connection.close()
})
