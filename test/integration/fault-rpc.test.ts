// RPC under faults, on a private node (the shared broker is never disturbed). The client's
// connection closed by force with 100 calls pending: all 100 end with CONNECTION_CLOSED at once
// (their replies could only reach the lost channel), none hangs, and calls made after the recovery
// get their replies. The server's connection closed mid-way through a stream of calls: every call
// ends by its deadline — with its own reply (the requeued request answered by the recovered
// server) or RPC_TIMEOUT — and the server answers again after its recovery.
import assert from 'node:assert/strict'
import { performance } from 'node:perf_hooks'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Connection, Consumer, type LapinError, type Message, MessageStatus, RpcClient } from 'lapinmq'
import { usePrivateBroker } from '../helpers/fault-setup.ts'
import { declarePrivateQueue, eventually } from '../helpers/fault-traffic.ts'

const node = usePrivateBroker()

test('client connection closed by force with 100 calls pending: all 100 end at once, later calls succeed', async () => {
  const { broker } = node
  const queue = 'rpc-fault-client'
  await declarePrivateQueue(broker.url, queue)
  const held: Message[] = []
  const serverConnection = new Connection({ url: broker.url, name: 'rpc-server' })
  const server = new Consumer({
    queueName: queue,
    concurrency: 100,
    connection: serverConnection,
    taskFunction: async (message: Message) => {
      if (message.headers.hold === true) {
        held.push(message)
        return MessageStatus.HANDLED_VIA_CALLBACK
      }
      await message.reply(`re: ${message.body.toString()}`)
      return MessageStatus.SUCCESS
    },
  })
  const clientConnection = new Connection({
    url: broker.url,
    name: 'rpc-client',
    recovery: { initialDelay: 50 },
  })
  const rpc = new RpcClient({ timeout: 30_000, connection: clientConnection })
  try {
    await server.start()
    await rpc.start()
    const outcomes: { code: string; at: number }[] = []
    const calls = Array.from({ length: 100 }, (_, i) =>
      rpc.call(queue, `held ${i}`, { headers: { hold: true } }).then(
        () => outcomes.push({ code: 'reply', at: performance.now() }),
        (err: LapinError) => outcomes.push({ code: err.code, at: performance.now() }),
      ),
    )
    assert.ok(await eventually(() => held.length === 100, 10_000), `the server holds ${held.length} of 100`)
    assert.equal(rpc.pending, 100)
    let closedAt = 0
    clientConnection.once('disconnected', () => {
      closedAt = performance.now()
    })
    assert.equal(await broker.closeConnections('rpc-client'), 1)
    await Promise.race([Promise.all(calls), sleep(5_000)])
    assert.equal(outcomes.length, 100, `${100 - outcomes.length} calls still pending 5 s after the close`)
    assert.deepEqual([...new Set(outcomes.map((o) => o.code))], ['CONNECTION_CLOSED'])
    const slowest = Math.max(...outcomes.map((o) => o.at - closedAt))
    assert.ok(
      closedAt > 0 && slowest < 50,
      `the last call ended ${slowest.toFixed(1)} ms after the connection was lost`,
    )
    assert.equal(rpc.pending, 0)

    // The server answers the held requests now: their replies have no channel to go to.
    await Promise.all(
      held.splice(0).map(async (message) => {
        await message.reply('too late')
        message.ack()
      }),
    )
    // Calls made while the connection recovers wait for the new channel; all are answered.
    const after = await Promise.all(Array.from({ length: 20 }, (_, i) => rpc.call(queue, `after ${i}`)))
    assert.deepEqual(
      after.map((reply) => reply.body.toString()),
      Array.from({ length: 20 }, (_, i) => `re: after ${i}`),
    )
    assert.equal(clientConnection.state, 'open')
  } finally {
    await rpc.stop()
    await clientConnection.close()
    await server.stop()
    await serverConnection.close()
  }
})

test('server connection closed mid-way: every call ends by its deadline, the server answers again after recovery', async () => {
  const { broker } = node
  const queue = 'rpc-fault-server'
  await declarePrivateQueue(broker.url, queue)
  const serverConnection = new Connection({
    url: broker.url,
    name: 'rpc-server',
    recovery: { initialDelay: 50 },
  })
  const server = new Consumer({
    queueName: queue,
    concurrency: 10,
    connection: serverConnection,
    taskFunction: async (message: Message) => {
      await sleep(20)
      await message.reply(`re: ${message.body.toString()}`)
      return MessageStatus.SUCCESS
    },
  })
  const clientConnection = new Connection({ url: broker.url, name: 'rpc-client' })
  const rpc = new RpcClient({ timeout: 1_500, connection: clientConnection })
  try {
    await server.start()
    await rpc.start()
    const outcomes = new Map<string, number>()
    const wrong: string[] = []
    let lateEnds = 0
    let n = 0
    let calling = true
    const caller = async (): Promise<void> => {
      while (calling) {
        const body = `call ${n++}`
        const t0 = performance.now()
        const code = await rpc.call(queue, body).then(
          (reply) => {
            if (reply.body.toString() !== `re: ${body}`) wrong.push(body)
            return 'reply'
          },
          (err: LapinError) => err.code,
        )
        if (performance.now() - t0 > 1_500 + 100) lateEnds++
        outcomes.set(code, (outcomes.get(code) ?? 0) + 1)
        // A call that ended at once must not starve the timers that end this loop.
        await new Promise((resolve) => setImmediate(resolve))
      }
    }
    const callers = Array.from({ length: 20 }, caller)
    await sleep(500)
    assert.equal(await broker.closeConnections('rpc-server'), 1)
    assert.ok(await eventually(() => serverConnection.state === 'open', 15_000), 'the server reconnects')
    // After the recovery, every call is answered again.
    await sleep(2_000)
    const before = outcomes.get('reply') ?? 0
    await sleep(1_000)
    calling = false
    await Promise.all(callers)
    const answeredAfter = (outcomes.get('reply') ?? 0) - before
    assert.deepEqual(wrong, [], 'a reply went to the wrong call')
    assert.equal(lateEnds, 0, 'a call ended after its deadline + 100 ms')
    for (const code of outcomes.keys())
      assert.ok(code === 'reply' || code === 'RPC_TIMEOUT', `outcome ${code}`)
    assert.ok(answeredAfter > 100, `only ${answeredAfter} calls answered in the second after the recovery`)
    assert.equal(rpc.pending, 0)
  } finally {
    await rpc.stop()
    await clientConnection.close()
    await server.stop()
    await serverConnection.close()
  }
})
