// An RPC client: each call publishes a request to the server's queue and resolves with the reply
// that carries its correlation id, over RabbitMQ's direct reply-to (no reply queue to declare). Every
// call ends by its deadline: with its reply, or a LapinError whose code says why (RPC_TIMEOUT when no
// reply came in time; UNROUTABLE at once when no queue took the request). Start rpc-server.ts first.
import { LapinError, RpcClient } from 'lapinmq'

const queue = process.env.QUEUE ?? 'rpc_queue'
const count = Number(process.env.COUNT ?? 10)

const rpc = new RpcClient({ timeout: 5_000 }) // each call's deadline (and its request's TTL)
await rpc.start()

// The calls run at once; each gets its own reply, matched by correlation id, in whatever order the
// server answers them.
const replies = await Promise.all(Array.from({ length: count }, (_, n) => rpc.callJson(queue, { n })))
for (const reply of replies) {
  const { n, fibonacci } = reply.json<{ n: number; fibonacci: number }>()
  console.log(`fibonacci(${n}) = ${fibonacci}`)
}

// The server answers a request it cannot serve with an error of its own.
const refused = await rpc.callJson(queue, { n: -1 }, { timeout: 1_000 }) // a deadline of its own
console.log(`n = -1: ${refused.json<{ error: string }>().error}`)

// No queue by that name: the broker returns the request, and the call fails at once.
try {
  await rpc.callJson(`${queue}.nobody`, { n: 1 })
} catch (err) {
  if (!(err instanceof LapinError)) throw err
  console.log(`${queue}.nobody: ${err.code}`) // UNROUTABLE
}
await rpc.stop()
