// Process spans when the consumer's connection is force-closed with messages in hand: a task that
// returns after the close, and a message handled via callback acked after it, end their spans with
// that ack (marked stale: the broker had requeued them); messages waiting in the backlog end theirs
// as requeued; their redelivered copies get spans of their own. No span is left open.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { SpanKind } from '@opentelemetry/api'
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { Connection, Consumer, type Message, MessageStatus, Publisher } from 'lapinmq'
import { usePrivateBroker } from '../helpers/fault-setup.ts'
import { declarePrivateQueue, eventually } from '../helpers/fault-traffic.ts'
import { registerTestTracing } from '../helpers/otel.ts'

const tracing = registerTestTracing()
const node = usePrivateBroker()

test('stale settles and dropped backlog messages end their process spans, once each', async () => {
  const queue = 'trace.stale'
  await declarePrivateQueue(node.broker.url, queue)
  const connection = new Connection({ url: node.broker.url, name: 'trace-stale-consumer' })
  let disconnected = false
  connection.on('disconnected', () => {
    disconnected = true
  })
  connection.on('error', () => {})
  const handled: Message[] = []
  const redelivered = new Set<string>()
  const consumer = new Consumer({
    queueName: queue,
    connection,
    concurrency: 2,
    prefetch: 5,
    taskFunction: async (message) => {
      const id = String(message.properties.messageId)
      if (message.redelivered) {
        redelivered.add(id)
        return MessageStatus.SUCCESS
      }
      if (id === 'slow' || id === 'blocker') {
        await eventually(() => disconnected, 30_000)
        return MessageStatus.SUCCESS
      }
      if (id === 'callback') {
        handled.push(message)
        return MessageStatus.HANDLED_VIA_CALLBACK
      }
      return MessageStatus.SUCCESS
    },
  })
  consumer.on('error', () => {})
  await consumer.start()
  // The callback one frees its slot at once; "slow" and "blocker" then hold both slots until the
  // close, so the two behind them wait in the backlog.
  const publisherConnection = new Connection({ url: node.broker.url, name: 'trace-stale-publisher' })
  const publisher = new Publisher({ kind: 'sync', connection: publisherConnection })
  for (const id of ['callback', 'slow', 'blocker', 'backlog-1', 'backlog-2']) {
    await publisher.sendMessageToQueue(queue, id, { messageId: id })
  }
  assert.ok(await eventually(() => handled.length === 1 && consumer.running === 2, 10_000), 'both slots busy')
  assert.equal(await node.broker.closeConnections('trace-stale-consumer'), 1)
  assert.ok(await eventually(() => redelivered.size === 5, 30_000), 'the copies came back')
  // Acked long after its channel died: a stale settle.
  ;(handled[0] as Message).ack()
  assert.ok(await eventually(() => tracing.openSpans.open.size === 0, 30_000), 'no span left open')
  await consumer.stop()
  await publisher.stop()
  await publisherConnection.close()
  await connection.close()

  const processSpans = tracing.spans().filter((s) => s.kind === SpanKind.CONSUMER)
  const of = (id: string): ReadableSpan[] =>
    processSpans.filter((s) => s.attributes['messaging.message.id'] === id)
  const summary = (id: string): unknown[] =>
    of(id).map(
      (s) =>
        `${s.attributes['lapinmq.settle.outcome']}${s.attributes['lapinmq.settle.stale'] ? ' stale' : ''}`,
    )
  assert.deepEqual(summary('slow').sort(), ['ack', 'ack stale'])
  assert.deepEqual(summary('blocker').sort(), ['ack', 'ack stale'])
  assert.deepEqual(summary('callback').sort(), ['ack', 'ack stale'])
  assert.deepEqual(summary('backlog-1').sort(), ['ack', 'requeue stale'])
  assert.deepEqual(summary('backlog-2').sort(), ['ack', 'requeue stale'])
  assert.equal(processSpans.length, 10)
})
