import assert from 'node:assert/strict'
import { test } from 'node:test'
import { backoffDelay } from '../../src/connection/backoff.ts'

test('backoff grows by the factor from the initial delay', () => {
  const mid = () => 0.5 // no jitter
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((a) => backoffDelay(a, {}, mid)),
    [100, 200, 400, 800, 1600],
  )
})

test('backoff never exceeds maxDelay, jitter included', () => {
  for (const r of [0, 0.5, 0.999]) {
    for (let attempt = 0; attempt < 60; attempt++) {
      const d = backoffDelay(attempt, { maxDelay: 5000 }, () => r)
      assert.ok(d >= 0 && d <= 5000, `attempt ${attempt}: ${d}`)
    }
  }
  assert.ok(backoffDelay(40, { maxDelay: 5000 }, () => 0.999) > 4900)
})

test('jitter spreads delays by ±jitter', () => {
  assert.equal(
    backoffDelay(0, { jitter: 0.2 }, () => 0),
    80,
  )
  assert.equal(
    backoffDelay(0, { jitter: 0.2 }, () => 1),
    120,
  )
  assert.equal(
    backoffDelay(0, { jitter: 0 }, () => 0),
    100,
  )
})
