// Request/reply over direct reply-to: every call ends in exactly one outcome — its own reply, never
// another call's; RPC_TIMEOUT by its deadline (a late reply is counted, not delivered); ABORTED at
// once; UNROUTABLE within a round trip; CONNECTION_CLOSED at stop(). The server is a plain Consumer
// whose task answers with message.reply / replyJson.
import assert from 'node:assert/strict'
import { performance } from 'node:perf_hooks'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  Connection,
  Consumer,
  type LapinError,
  type Message,
  MessageStatus,
  RpcClient,
  UnroutableError,
} from 'lapinmq'
import { closeAdmin, declareExchange, deleteExchange, deleteQueue, uniqueName } from '../helpers/broker.ts'

after(closeAdmin)

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<LapinError> {
  return promise.then(
    () => assert.fail('the call resolved; it should have been rejected'),
    (err: unknown) => err as LapinError,
  )
}

test("2,000 calls, 50 at once, to a server with concurrency 10: every reply is its own call's, 0 errors", async () => {
  const queue = uniqueName('rpc-echo')
  let served = 0
  const server = new Consumer({
    queueName: queue,
    concurrency: 10,
    taskFunction: async (message: Message) => {
      const { n } = message.json<{ n: number }>()
      served++
      // Out of order on purpose: replies must be matched by correlation id, not by arrival.
      await sleep(n % 3)
      await message.replyJson({ n, square: n * n }, { headers: { 'x-served-by': 'echo' } })
      return MessageStatus.SUCCESS
    },
  })
  const rpc = new RpcClient({ timeout: 10_000 })
  try {
    await server.start()
    await rpc.start()
    let next = 0
    let matched = 0
    const errors: unknown[] = []
    const worker = async (): Promise<void> => {
      while (next < 2000) {
        const n = next++
        try {
          const reply = await rpc.callJson(queue, { n })
          const answer = reply.json<{ n: number; square: number }>()
          assert.equal(answer.n, n)
          assert.equal(answer.square, n * n)
          assert.equal(reply.headers['x-served-by'], 'echo')
          assert.equal(reply.properties.contentType, 'application/json')
          matched++
        } catch (err) {
          errors.push(err)
        }
      }
    }
    await Promise.all(Array.from({ length: 50 }, worker))
    assert.deepEqual(errors, [])
    assert.equal(matched, 2000)
    assert.equal(served, 2000)
    assert.equal(rpc.pending, 0)
    assert.equal(rpc.lateReplies, 0)
  } finally {
    await rpc.stop()
    // Held requests are requeued, not waited for: a failed assertion must not wait out stop()'s timeout.
    await server.stop({ timeout: 500 })
    await deleteQueue(queue)
  }
})

test('a server that never replies: RPC_TIMEOUT within the deadline + 100 ms; a late reply is counted, not delivered', async () => {
  const queue = uniqueName('rpc-silent')
  const held: Message[] = []
  const server = new Consumer({
    queueName: queue,
    concurrency: 5,
    taskFunction: (message: Message) => {
      held.push(message)
      return MessageStatus.HANDLED_VIA_CALLBACK
    },
  })
  const rpc = new RpcClient({ timeout: 10_000 })
  try {
    await server.start()
    await rpc.start()
    const t0 = performance.now()
    const err = await rejection(rpc.call(queue, 'anyone?', { timeout: 300 }))
    const elapsed = performance.now() - t0
    assert.equal(err.code, 'RPC_TIMEOUT')
    assert.ok(elapsed >= 299 && elapsed < 400, `timed out after ${elapsed.toFixed(0)} ms`)
    assert.equal(rpc.pending, 0)
    // The server answers now: the reply is dropped and counted; the next call gets its own reply only.
    const late = held.shift() as Message
    await late.reply('too late')
    late.ack()
    await waitUntil(() => rpc.lateReplies === 1)
    const next = rpc.call(queue, 'second')
    await waitUntil(() => held.length === 1)
    const second = held.shift() as Message
    await second.reply('for the second')
    second.ack()
    assert.equal((await next).body.toString(), 'for the second')
    assert.equal(rpc.lateReplies, 1)
  } finally {
    await rpc.stop()
    // Held requests are requeued, not waited for: a failed assertion must not wait out stop()'s timeout.
    await server.stop({ timeout: 500 })
    await deleteQueue(queue)
  }
})

test('an aborted signal rejects a pending call ABORTED at once; an already aborted one before anything is sent', async () => {
  const queue = uniqueName('rpc-abort')
  const held: Message[] = []
  const server = new Consumer({
    queueName: queue,
    taskFunction: (message: Message) => {
      held.push(message)
      return MessageStatus.HANDLED_VIA_CALLBACK
    },
  })
  const rpc = new RpcClient({ timeout: 10_000 })
  try {
    await server.start()
    await rpc.start()
    const controller = new AbortController()
    const call = rpc.call(queue, 'abort me', { signal: controller.signal })
    await waitUntil(() => held.length === 1)
    const t0 = performance.now()
    controller.abort(new Error('user gave up'))
    const err = await rejection(call)
    const elapsed = performance.now() - t0
    assert.equal(err.code, 'ABORTED')
    assert.ok(elapsed < 20, `rejected ${elapsed.toFixed(1)} ms after the abort`)
    assert.equal((err.cause as Error).message, 'user gave up')
    assert.equal(rpc.pending, 0)
    const message = held.shift() as Message
    await message.reply('late')
    message.ack()
    await waitUntil(() => rpc.lateReplies === 1)

    const early = await rejection(rpc.call(queue, 'never sent', { signal: AbortSignal.abort() }))
    assert.equal(early.code, 'ABORTED')
    await sleep(100)
    assert.equal(held.length, 0, 'a call aborted before it was made must not be sent')
  } finally {
    await rpc.stop()
    // Held requests are requeued, not waited for: a failed assertion must not wait out stop()'s timeout.
    await server.stop({ timeout: 500 })
    await deleteQueue(queue)
  }
})

test('no queue takes the request: UNROUTABLE within one round trip + 50 ms; a missing exchange: NOT_FOUND, the client goes on', async () => {
  const exchange = uniqueName('rpc-unbound')
  await declareExchange(exchange, 'direct')
  const queue = uniqueName('rpc-after-unroutable')
  const server = new Consumer({
    queueName: queue,
    taskFunction: async (message: Message) => {
      await message.reply(`re: ${message.body.toString()}`)
      return MessageStatus.SUCCESS
    },
  })
  const connection = new Connection()
  const rpc = new RpcClient({ timeout: 10_000, connection })
  try {
    await server.start()
    await rpc.start()
    // One round trip, measured on the same connection: a passive check of a queue.
    const r0 = performance.now()
    await connection.checkQueue(queue)
    const roundTrip = performance.now() - r0
    const t0 = performance.now()
    const err = await rejection(rpc.call(uniqueName('rpc-nobody'), 'hello?'))
    const elapsed = performance.now() - t0
    assert.ok(err instanceof UnroutableError, `expected UnroutableError, got ${String(err)}`)
    assert.equal(err.code, 'UNROUTABLE')
    assert.ok(
      elapsed < roundTrip + 50,
      `UNROUTABLE after ${elapsed.toFixed(1)} ms (round trip ${roundTrip.toFixed(1)} ms)`,
    )

    const viaExchange = await rejection(rpc.call({ exchange, routingKey: 'nobody' }, 'hello?'))
    assert.equal(viaExchange.code, 'UNROUTABLE')
    const missing = await rejection(
      rpc.call({ exchange: uniqueName('rpc-no-such-exchange'), routingKey: 'x' }, 'x'),
    )
    assert.equal(missing.code, 'NOT_FOUND')
    assert.equal((await rpc.call(queue, 'still there?')).body.toString(), 're: still there?')
  } finally {
    await rpc.stop()
    // Held requests are requeued, not waited for: a failed assertion must not wait out stop()'s timeout.
    await server.stop({ timeout: 500 })
    await connection.close()
    await deleteQueue(queue)
    await deleteExchange(exchange)
  }
})

test('an exchange deleted after its first call: NOT_FOUND, then checked again (the channel and its other calls survive)', async () => {
  const exchange = uniqueName('rpc-deleted-later')
  const queue = uniqueName('rpc-behind-exchange')
  await declareExchange(exchange, 'direct')
  const held: Message[] = []
  const server = new Consumer({
    queueName: queue,
    concurrency: 2,
    exchange,
    bindingKeys: ['ask'],
    taskFunction: async (message: Message) => {
      if (message.headers.hold === true) {
        held.push(message)
        return MessageStatus.HANDLED_VIA_CALLBACK
      }
      await message.reply('answered')
      return MessageStatus.SUCCESS
    },
  })
  const rpc = new RpcClient({ timeout: 10_000 })
  try {
    await server.start()
    assert.equal((await rpc.call({ exchange, routingKey: 'ask' }, 'first')).body.toString(), 'answered')
    await deleteExchange(exchange)
    // Known since the first call: the broker refuses the request and closes the client's channel.
    const refused = await rejection(rpc.call({ exchange, routingKey: 'ask' }, 'second'))
    assert.equal(refused.code, 'NOT_FOUND')
    // Forgotten since: checked first, so a call in flight meanwhile keeps its channel and its reply.
    const waiting = rpc.call(queue, 'held', { headers: { hold: true } })
    await waitUntil(() => held.length === 1)
    const again = await rejection(rpc.call({ exchange, routingKey: 'ask' }, 'third'))
    assert.equal(again.code, 'NOT_FOUND')
    const message = held.shift() as Message
    await message.reply('still mine')
    message.ack()
    assert.equal((await waiting).body.toString(), 'still mine')
  } finally {
    await rpc.stop()
    // Held requests are requeued, not waited for: a failed assertion must not wait out stop()'s timeout.
    await server.stop({ timeout: 500 })
    await deleteQueue(queue)
  }
})

test('a call that waited for room past its deadline: RPC_TIMEOUT saying it was never sent, and why', async () => {
  const queue = uniqueName('rpc-window')
  const held: Message[] = []
  const server = new Consumer({
    queueName: queue,
    concurrency: 2,
    taskFunction: (message: Message) => {
      held.push(message)
      return MessageStatus.HANDLED_VIA_CALLBACK
    },
  })
  const rpc = new RpcClient({ timeout: 10_000, maxInFlight: 1 })
  try {
    await server.start()
    const first = rpc.call(queue, 'takes the window')
    await waitUntil(() => held.length === 1)
    const err = await rejection(rpc.call(queue, 'waits', { timeout: 200 }))
    assert.equal(err.code, 'RPC_TIMEOUT')
    assert.match(err.message, /never sent \(it waited for room: maxInFlight 1 /)
    await sleep(100)
    assert.equal(held.length, 1, 'the call that timed out while waiting must not be sent later')
    const message = held.shift() as Message
    await message.reply('done')
    message.ack()
    assert.equal((await first).body.toString(), 'done')
  } finally {
    await rpc.stop()
    // Held requests are requeued, not waited for: a failed assertion must not wait out stop()'s timeout.
    await server.stop({ timeout: 500 })
    await deleteQueue(queue)
  }
})

test('stop() rejects pending calls CONNECTION_CLOSED; calls after stop() are refused', async () => {
  const queue = uniqueName('rpc-stop')
  const held: Message[] = []
  const server = new Consumer({
    queueName: queue,
    concurrency: 3,
    taskFunction: (message: Message) => {
      held.push(message)
      return MessageStatus.HANDLED_VIA_CALLBACK
    },
  })
  const rpc = new RpcClient()
  try {
    await server.start()
    const calls = [rpc.call(queue, 'a'), rpc.call(queue, 'b'), rpc.call(queue, 'c')]
    await waitUntil(() => held.length === 3)
    await rpc.stop()
    for (const call of calls) assert.equal((await rejection(call)).code, 'CONNECTION_CLOSED')
    assert.equal(rpc.pending, 0)
    assert.equal((await rejection(rpc.call(queue, 'd'))).code, 'CONNECTION_CLOSED')
    for (const message of held) message.ack()
  } finally {
    await rpc.stop()
    // Held requests are requeued, not waited for: a failed assertion must not wait out stop()'s timeout.
    await server.stop({ timeout: 500 })
    await deleteQueue(queue)
  }
})

test('message.reply on a message without replyTo throws NO_REPLY_TO; the task can still settle it', async () => {
  const queue = uniqueName('rpc-no-reply-to')
  const seen: LapinError[] = []
  const server = new Consumer({
    queueName: queue,
    taskFunction: (message: Message) => {
      try {
        void message.reply('to whom?')
      } catch (err) {
        seen.push(err as LapinError)
      }
      return MessageStatus.SUCCESS
    },
  })
  const { Publisher } = await import('lapinmq')
  const publisher = new Publisher({ kind: 'sync' })
  try {
    await server.start()
    await publisher.sendMessageToQueue(queue, 'not a request')
    await waitUntil(() => seen.length === 1)
    assert.equal(seen[0]?.code, 'NO_REPLY_TO')
    assert.match(seen[0]?.message ?? '', /no replyTo/)
  } finally {
    await publisher.stop()
    // Held requests are requeued, not waited for: a failed assertion must not wait out stop()'s timeout.
    await server.stop({ timeout: 500 })
    await deleteQueue(queue)
  }
})

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) assert.fail('condition not met in time')
    await sleep(5)
  }
}
