// Forwards each message, upper-cased, with an async publisher (many confirms in flight). The task
// returns at once; the source message is acked only when its output message is confirmed, and
// requeued if the broker refuses it.
import { Consumer, type Message, MessageStatus, Publisher, waitForSigterm } from 'lapinmq'

const queue = process.env.QUEUE ?? 'task_queue'
const outputQueue = process.env.OUTPUT_QUEUE ?? 'output_queue'

const publisher = new Publisher({ kind: 'async' })
const consumer = new Consumer({
  queueName: queue,
  concurrency: 10,
  taskFunction: async (message: Message) => {
    const body = message.body.toString().toUpperCase()
    publisher.sendMessageToQueue(outputQueue, body, {
      callbacks: {
        ackCallback: () => {
          console.log(`forwarded: ${body}`)
          message.ack()
        },
        nackCallback: () => message.rejectRetry(),
      },
    })
    return MessageStatus.HANDLED_VIA_CALLBACK
  },
})
await publisher.start()
await consumer.start()
console.log(`forwarding '${queue}' to '${outputQueue}'; SIGTERM to stop`)
await waitForSigterm()
await consumer.stop() // waits for the callbacks to settle the messages in flight
await publisher.stop()
