// Tracing with an OpenTelemetry SDK registered: a pipeline A → task → B where each message makes one
// trace publish A → process A → publish B → process B, correctly parented; the outcome of every
// settle on its process span (ack, reject, requeue, retried, dead-lettered), the code of a failed
// send on its span; no span left open; `tracing: false` makes none.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { Connection, Consumer, type Message, MessageStatus, Publisher, RpcClient } from 'lapinmq'
import {
  brokerUrl,
  closeAdmin,
  declareQueue,
  deleteQueue,
  drainQueue,
  uniqueName,
  waitFor,
} from '../helpers/broker.ts'
import { parentOf, registerTestTracing } from '../helpers/otel.ts'

const tracing = registerTestTracing()
const queues: string[] = []

after(async () => {
  for (const q of queues) await deleteQueue(q).catch(() => undefined)
  await closeAdmin()
})

async function queue(prefix: string): Promise<string> {
  const name = uniqueName(prefix)
  queues.push(name)
  await declareQueue(name)
  return name
}

function spansOf(destination: string): ReadableSpan[] {
  return tracing.spans().filter((s) => s.attributes['messaging.destination.name'] === destination)
}

async function noSpanOpen(): Promise<void> {
  await waitFor(() => tracing.openSpans.open.size === 0, 10_000, 'every span ended')
}

test('a pipeline A → task → B of 200 messages: one trace each, publish A → process A → publish B → process B', async () => {
  const a = await queue('trace.a')
  const b = await queue('trace.b')
  const connection = new Connection({ url: brokerUrl, name: 'tracing-pipeline' })
  const publisherA = new Publisher({ kind: 'async', connection })
  const publisherB = new Publisher({ kind: 'async', connection })
  await publisherA.start()
  await publisherB.start()
  const consumerA = new Consumer({
    queueName: a,
    connection,
    concurrency: 10,
    taskFunction: async (message) => {
      await new Promise((r) => setImmediate(r))
      // Forwarded with the headers it came with: its own traceparent replaces the old one.
      publisherB
        .sendMessageToQueue(b, message.body, {
          messageId: message.properties.messageId as string,
          headers: message.headers,
          callbacks: { ackCallback: message.ack, nackCallback: message.rejectRetry },
        })
        .catch(() => undefined)
      return MessageStatus.HANDLED_VIA_CALLBACK
    },
  })
  const received = new Map<string, Message>()
  const consumerB = new Consumer({
    queueName: b,
    connection,
    concurrency: 5,
    taskFunction: (message) => {
      received.set(message.properties.messageId as string, message)
      return MessageStatus.SUCCESS
    },
  })
  await consumerA.start()
  await consumerB.start()
  const count = 200
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      publisherA.sendMessageToQueue(a, `m${i}`, { messageId: `m${i}` }),
    ),
  )
  await waitFor(() => received.size === count, 30_000, 'every message through B')
  await consumerA.stop()
  await consumerB.stop()
  await publisherA.stop()
  await publisherB.stop()
  await connection.close()
  await noSpanOpen()

  for (const message of received.values()) {
    assert.equal(typeof message.headers.traceparent, 'string', 'B received a traceparent')
  }
  const byTrace = new Map<string, ReadableSpan[]>()
  for (const span of [...spansOf(a), ...spansOf(b)]) {
    const id = span.spanContext().traceId
    byTrace.set(id, [...(byTrace.get(id) ?? []), span])
  }
  assert.equal(byTrace.size, count, 'one trace per message')
  for (const spans of byTrace.values()) {
    assert.equal(spans.length, 4, `four spans: ${spans.map((s) => s.name).join(', ')}`)
    const find = (name: string): ReadableSpan => {
      const matching = spans.filter((s) => s.name === name)
      assert.equal(matching.length, 1, `one '${name}'`)
      return matching[0] as ReadableSpan
    }
    const publishA = find(`publish ${a}`)
    const processA = find(`process ${a}`)
    const publishB = find(`publish ${b}`)
    const processB = find(`process ${b}`)
    assert.equal(parentOf(publishA), undefined, 'publish A is the root')
    assert.equal(parentOf(processA), publishA.spanContext().spanId)
    assert.equal(parentOf(publishB), processA.spanContext().spanId)
    assert.equal(parentOf(processB), publishB.spanContext().spanId)
    assert.deepEqual(
      [publishA.kind, processA.kind, publishB.kind, processB.kind],
      [SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.PRODUCER, SpanKind.CONSUMER],
    )
    const id = publishA.attributes['messaging.message.id']
    for (const span of spans) assert.equal(span.attributes['messaging.message.id'], id)
    // A is acked by B's confirm: its span ends with that settle, after B's publish span.
    assert.equal(processA.attributes['lapinmq.settle.outcome'], 'ack')
    assert.equal(processB.attributes['lapinmq.settle.outcome'], 'ack')
    const endOf = (span: ReadableSpan): number =>
      tracing.openSpans.endOrder.get(span.spanContext().spanId) ?? 0
    assert.ok(endOf(processA) > endOf(publishB), 'A settled after B was confirmed')
    for (const span of spans) assert.equal(span.status.code, SpanStatusCode.UNSET)
  }
  const sample = spansOf(a).find((s) => s.kind === SpanKind.PRODUCER) as ReadableSpan
  assert.deepEqual(
    {
      system: sample.attributes['messaging.system'],
      type: sample.attributes['messaging.operation.type'],
      name: sample.attributes['messaging.operation.name'],
      routingKey: sample.attributes['messaging.rabbitmq.destination.routing_key'],
      size: sample.attributes['messaging.message.body.size'],
      port: sample.attributes['server.port'],
      scope: sample.instrumentationScope.name,
    },
    {
      system: 'rabbitmq',
      type: 'send',
      name: 'publish',
      routingKey: a,
      size: String(sample.attributes['messaging.message.id']).length,
      port: 5672,
      scope: 'lapinmq',
    },
  )
  assert.equal(typeof sample.attributes['server.address'], 'string')
  const consumed = spansOf(a).find((s) => s.kind === SpanKind.CONSUMER) as ReadableSpan
  assert.equal(consumed.attributes['messaging.operation.type'], 'process')
  assert.equal(consumed.attributes['messaging.operation.name'], 'process')
  assert.equal(typeof consumed.attributes['messaging.rabbitmq.message.delivery_tag'], 'number')
})

function hrtimeMs([s, ns]: [number, number]): number {
  return s * 1e3 + ns / 1e6
}

test('an unroutable send ends its span with error status and the code', async () => {
  const connection = new Connection({ url: brokerUrl, name: 'tracing-unroutable' })
  const publisher = new Publisher({ kind: 'sync', connection })
  await publisher.start()
  const nowhere = uniqueName('trace.nowhere')
  await assert.rejects(publisher.sendMessageToQueue(nowhere, 'x'), { code: 'UNROUTABLE' })
  await publisher.stop()
  await connection.close()
  const [span] = spansOf(nowhere)
  assert.ok(span)
  assert.equal(span.status.code, SpanStatusCode.ERROR)
  assert.equal(span.attributes['error.type'], 'UNROUTABLE')
  assert.match(span.status.message ?? '', /^UNROUTABLE/)
  await noSpanOpen()
})

test('each settle ends its process span with its outcome: ack, reject, requeue, retried, dead-lettered', async () => {
  const plain = await queue('trace.outcomes')
  const laddered = await queue('trace.ladder')
  queues.push(`${laddered}.retry.50`, `${laddered}.dead`)
  const connection = new Connection({ url: brokerUrl, name: 'tracing-outcomes' })
  const publisher = new Publisher({ kind: 'async', connection })
  await publisher.start()
  const decide = (message: Message): MessageStatus => {
    const id = message.properties.messageId as string
    if (id.startsWith('reject')) return MessageStatus.FAIL_DO_NOT_RETRY
    if (id.startsWith('again') && message.attempt === 1 && !message.redelivered)
      return MessageStatus.FAIL_RETRY_LATER
    return MessageStatus.SUCCESS
  }
  const done = new Set<string>()
  const track = (message: Message): MessageStatus => {
    const status = decide(message)
    if (status !== MessageStatus.FAIL_RETRY_LATER) done.add(`${message.properties.messageId}`)
    return status
  }
  const consumer = new Consumer({ queueName: plain, connection, taskFunction: track })
  const ladder = new Consumer({
    queueName: laddered,
    connection,
    taskFunction: track,
    retry: { delays: [50] },
  })
  await consumer.start()
  await ladder.start()
  await publisher.sendMessageToQueue(plain, 'x', { messageId: 'reject-plain' })
  await publisher.sendMessageToQueue(plain, 'x', { messageId: 'again-plain' })
  await publisher.sendMessageToQueue(laddered, 'x', { messageId: 'reject-ladder' })
  await publisher.sendMessageToQueue(laddered, 'x', { messageId: 'again-ladder' })
  await waitFor(() => done.size === 4, 20_000, 'every message settled for good')
  await consumer.stop()
  await ladder.stop()
  await publisher.stop()
  await connection.close()
  await noSpanOpen()

  const outcomes = (id: string): unknown[] =>
    tracing
      .spans()
      .filter((s) => s.kind === SpanKind.CONSUMER && s.attributes['messaging.message.id'] === id)
      .sort((x, y) => hrtimeMs(x.startTime) - hrtimeMs(y.startTime))
      .map((s) => s.attributes['lapinmq.settle.outcome'])
  assert.deepEqual(outcomes('reject-plain'), ['reject'])
  assert.deepEqual(outcomes('again-plain'), ['requeue', 'ack'])
  assert.deepEqual(outcomes('reject-ladder'), ['dead-lettered'])
  assert.deepEqual(outcomes('again-ladder'), ['retried', 'ack'])
  // The copy the ladder published is the process span's child; the retried delivery its grandchild.
  const again = tracing.spans().filter((s) => s.attributes['messaging.message.id'] === 'again-ladder')
  assert.equal(new Set(again.map((s) => s.spanContext().traceId)).size, 1, 'the retry stays in one trace')
  const failed = again.find((s) => s.attributes['lapinmq.settle.outcome'] === 'retried') as ReadableSpan
  assert.equal(failed.status.code, SpanStatusCode.ERROR)
  assert.equal(failed.attributes['error.type'], 'retried')
  const copy = again.find(
    (s) => s.kind === SpanKind.PRODUCER && parentOf(s) === failed.spanContext().spanId,
  ) as ReadableSpan
  assert.ok(copy, 'the copy to the delay queue is a child of the failed process span')
  const retriedDelivery = again.find((s) => s.attributes['lapinmq.settle.outcome'] === 'ack') as ReadableSpan
  assert.equal(parentOf(retriedDelivery), copy.spanContext().spanId)
})

test('an RPC call: its span is the parent of the server’s process span, whose reply span is its child', async () => {
  const requests = await queue('trace.rpc')
  const connection = new Connection({ url: brokerUrl, name: 'tracing-rpc' })
  const server = new Consumer({
    queueName: requests,
    connection,
    taskFunction: async (message) => {
      await message.reply('pong')
      return MessageStatus.SUCCESS
    },
  })
  await server.start()
  const client = new RpcClient({ connection, timeout: 5_000 })
  await client.start()
  const reply = await client.call(requests, 'ping')
  assert.equal(reply.body.toString(), 'pong')
  await client.stop()
  await server.stop({ timeout: 2_000 })
  await connection.close()
  await noSpanOpen()

  const call = spansOf(requests).find((s) => s.kind === SpanKind.PRODUCER) as ReadableSpan
  const processed = spansOf(requests).find((s) => s.kind === SpanKind.CONSUMER) as ReadableSpan
  assert.ok(call && processed)
  assert.equal(parentOf(processed), call.spanContext().spanId)
  const replySpan = tracing
    .spans()
    .find((s) => parentOf(s) === processed.spanContext().spanId) as ReadableSpan
  assert.ok(replySpan, 'the reply has a span, child of the process span')
  assert.equal(replySpan.name, 'publish')
  assert.equal(replySpan.attributes['messaging.destination.temporary'], true)
  assert.equal(
    call.attributes['messaging.message.conversation_id'],
    processed.attributes['messaging.message.conversation_id'],
  )
  assert.ok(hrtimeMs(call.endTime) >= hrtimeMs(replySpan.endTime) - 1, 'the call ends with its reply')
})

test('tracing: false on the connection, or on a publisher or consumer, makes no span and no header', async () => {
  const off = await queue('trace.off')
  const offToo = await queue('trace.off-own')
  const connection = new Connection({ url: brokerUrl, name: 'tracing-off', tracing: false })
  const publisher = new Publisher({ kind: 'sync', connection })
  await publisher.sendMessageToQueue(off, 'x')
  const traced = new Connection({ url: brokerUrl, name: 'tracing-on' })
  const ownOff = new Publisher({ kind: 'sync', connection: traced, tracing: false })
  await ownOff.start()
  await ownOff.sendMessageToQueue(offToo, 'y')
  const got = [...(await drainQueue(off)), ...(await drainQueue(offToo))]
  assert.equal(got.length, 2)
  for (const m of got) assert.equal(m.properties.headers?.traceparent, undefined)
  await publisher.sendMessageToQueue(off, 'z')
  let processed = 0
  const consumer = new Consumer({
    queueName: off,
    connection: traced,
    tracing: false,
    taskFunction: () => {
      processed++
      return MessageStatus.SUCCESS
    },
  })
  await consumer.start()
  await waitFor(() => processed === 1)
  await consumer.stop()
  await publisher.stop()
  await ownOff.stop()
  await connection.close()
  await traced.close()
  assert.deepEqual(spansOf(off), [])
  assert.deepEqual(spansOf(offToo), [])
})
