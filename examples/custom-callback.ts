// An async publisher whose callbacks do more than settle the source message: the ack callback
// records an audit line and a count before acking; the nack callback logs the error code and
// rejects without retry (dead-lettered if the queue has a dead-letter exchange).
import { Consumer, type LapinError, type Message, MessageStatus, Publisher, waitForSigterm } from 'lapinmq'

const queue = process.env.QUEUE ?? 'task_queue'
const outputQueue = process.env.OUTPUT_QUEUE ?? 'output_queue'

const publisher = new Publisher({ kind: 'async' })
let forwarded = 0

function onConfirmed(message: Message, messageId: string): void {
  forwarded++
  console.log(`audit: ${messageId} confirmed (${forwarded} so far)`)
  message.ack()
}

function onRefused(message: Message, error: LapinError): void {
  console.error(`refused: ${error.code}; dropping the source message`)
  message.reject()
}

const consumer = new Consumer({
  queueName: queue,
  concurrency: 10,
  taskFunction: async (message: Message) => {
    const messageId = message.properties.messageId ?? `tag-${message.deliveryTag}`
    publisher.sendMessageToQueue(outputQueue, message.body.toString().toUpperCase(), {
      messageId,
      callbacks: {
        ackCallback: () => onConfirmed(message, messageId),
        nackCallback: (error) => onRefused(message, error),
      },
    })
    return MessageStatus.HANDLED_VIA_CALLBACK
  },
})
await publisher.start()
await consumer.start()
console.log(`forwarding '${queue}' to '${outputQueue}'; SIGTERM to stop`)
await waitForSigterm()
await consumer.stop()
await publisher.stop()
console.log(`forwarded ${forwarded} messages`)
