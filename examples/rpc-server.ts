// An RPC server: a plain Consumer whose task answers each request with message.replyJson(), which
// sends the reply to the request's replyTo with its correlationId and resolves once the broker has
// confirmed it. The request is acked only after that: a server that dies before replying leaves the
// request in the queue, for the next server to answer. Runs until SIGTERM (or Ctrl-C).
import { Consumer, type Message, MessageStatus, waitForSigterm } from 'lapinmq'

const queue = process.env.QUEUE ?? 'rpc_queue'

function fibonacci(n: number): number {
  let [a, b] = [0, 1]
  for (let i = 0; i < n; i++) [a, b] = [b, a + b]
  return a
}

/** The request's n, or undefined when the body is not `{ "n": <an integer in 0..78> }`. */
function nOf(message: Message): number | undefined {
  try {
    const { n } = message.json<{ n?: unknown }>()
    return Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 78 ? (n as number) : undefined
  } catch {
    return undefined // not JSON (or JSON null)
  }
}

const server = new Consumer({
  queueName: queue, // declared (durable) by start(); clients send to it through the default exchange
  concurrency: 4, // up to four requests answered at once
  taskFunction: async (message: Message) => {
    // Not a request: nobody to answer (reply() would throw NO_REPLY_TO). Reject it, never retry it.
    if (!message.properties.replyTo) return MessageStatus.FAIL_DO_NOT_RETRY
    const n = nOf(message)
    if (n === undefined) {
      // A bad request gets an answer too: its caller learns why now, not at its deadline.
      await message.replyJson({ error: 'expected { "n": an integer in 0..78 }' })
    } else {
      await message.replyJson({ n, fibonacci: fibonacci(n) })
    }
    return MessageStatus.SUCCESS // ack, now that the reply is confirmed
  },
})
await server.start()
console.log(`answering on '${queue}'; SIGTERM to stop`)
await waitForSigterm()
await server.stop() // finishes the requests being answered; the others stay in the queue
