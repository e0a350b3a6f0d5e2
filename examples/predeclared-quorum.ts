// Consumes a queue that operators declared: a quorum queue with arguments of their choosing
// (x-delivery-limit, x-max-length). A Consumer's own declare would name other arguments, and the
// broker refuses a declare that differs (406 PRECONDITION_FAILED, inequivalent arg). With
// declareQueue: false it only checks that the queue exists (start() rejects NOT_FOUND when it does
// not) and consumes it as it is, the operators' arguments still in force.
import { Consumer, MessageStatus, waitForSigterm } from 'lapinmq'

const queue = process.env.QUEUE ?? 'payments'

const consumer = new Consumer({
  queueName: queue,
  declareQueue: false,
  concurrency: 4,
  taskFunction: (message) => {
    console.log(`received: ${message.body}`)
    // FAIL_RETRY_LATER requeues; past x-delivery-limit the broker dead-letters or drops the message.
    return MessageStatus.SUCCESS
  },
})
consumer.on('error', (error) => console.error(`error: ${error.code}: ${error.message}`))
await consumer.start()
console.log(`consuming '${queue}' as declared; SIGTERM to stop`)
await waitForSigterm()
await consumer.stop()
