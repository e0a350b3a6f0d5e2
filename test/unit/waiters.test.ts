// unlessAborted (src/internal/waiters.ts): how stop() gives up on a start still waiting for the
// connection without ending the connection's own attempts.
import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { test } from 'node:test'
import { unlessAborted } from '../../src/util/waiters.ts'

const reason = (): Error => new Error('stopped')

test('unlessAborted: no signal, or a signal never aborted, passes the outcome through', async () => {
  assert.equal(await unlessAborted(Promise.resolve(1), undefined, reason), 1)
  assert.equal(await unlessAborted(Promise.resolve(2), new AbortController().signal, reason), 2)
  await assert.rejects(
    unlessAborted(Promise.reject(new Error('boom')), new AbortController().signal, reason),
    /boom/,
  )
})

test('unlessAborted: an abort rejects at once with the reason; the late outcome is ignored', async () => {
  const controller = new AbortController()
  let settle: (value: number) => void = () => {}
  const slow = new Promise<number>((resolve) => {
    settle = resolve
  })
  const waiting = unlessAborted(slow, controller.signal, reason)
  controller.abort()
  await assert.rejects(waiting, /stopped/)
  settle(3)
  assert.equal(await slow, 3)
})

test('unlessAborted: an already aborted signal rejects at once, and a later rejection is not unhandled', async () => {
  const controller = new AbortController()
  controller.abort()
  let fail: (err: Error) => void = () => {}
  const slow = new Promise<number>((_, reject) => {
    fail = reject
  })
  await assert.rejects(unlessAborted(slow, controller.signal, reason), /stopped/)
  fail(new Error('late'))
  await new Promise((resolve) => setImmediate(resolve))
})

test('unlessAborted: once settled, the abort listener is removed', async () => {
  const controller = new AbortController()
  for (let i = 0; i < 20; i++) await unlessAborted(Promise.resolve(i), controller.signal, reason)
  await unlessAborted(Promise.reject(new Error('x')), controller.signal, reason).catch(() => undefined)
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0)
})
