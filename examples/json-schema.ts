// JSON bodies with a schema: the consumer parses and validates each body before the task, which
// gets the schema's output as message.data, typed. A body that is not JSON, or that the schema
// refuses, never reaches the task: it is rejected without requeue (here dead-lettered to a queue of
// its own, to be looked at) and reported by an invalidMessage event. Any Standard Schema validator
// works; this one is zod, which lapinmq does not depend on: npm install zod.
import { Consumer, MessageStatus, Publisher, waitForSigterm } from 'lapinmq'
import { z } from 'zod'

const queue = process.env.QUEUE ?? 'orders'
const invalidQueue = `${queue}.invalid`
const count = Number(process.env.COUNT ?? 3)

const Order = z.object({ id: z.string(), amount: z.number().positive(), currency: z.string().default('EUR') })

let left = count + 2 // the valid orders and the two bad messages
let allSettled!: () => void
const finished = new Promise<void>((resolve) => {
  allSettled = resolve
})

const consumer = new Consumer({
  queueName: queue,
  // A rejected message goes to the default exchange ('') with invalidQueue as its routing key.
  queueArgs: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': invalidQueue },
  topology: { queues: [{ name: invalidQueue }] },
  schema: Order,
  taskFunction: (message) => {
    const { id, amount, currency } = message.data // { id: string; amount: number; currency: string }
    console.log(`processed: ${id} ${amount.toFixed(2)} ${currency}`)
    if (--left === 0) allSettled()
    return MessageStatus.SUCCESS
  },
})
consumer.on('invalidMessage', ({ reason, issues }) => {
  // Issue paths are keys and indexes (a symbol, even): String() each before joining.
  const described = issues.map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`)
  console.log(`invalid (${reason}): ${described.join('; ')}`)
  if (--left === 0) allSettled()
})
await consumer.start()

const publisher = new Publisher({ kind: 'sync' })
for (let i = 1; i <= count; i++) await publisher.sendJsonToQueue(queue, { id: `o-${i}`, amount: i * 10 })
await publisher.sendJsonToQueue(queue, { id: 'o-bad', amount: -5 }) // the schema refuses it
await publisher.sendMessageToQueue(queue, '{ not json') // not even JSON
await Promise.race([finished, waitForSigterm()]) // every message processed or refused (or Ctrl-C)
await Promise.all([publisher.stop(), consumer.stop()])
