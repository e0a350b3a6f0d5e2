// What an --exec command prints reaches the terminal a whole line at a time, and a command that
// prints without newlines is not held in memory without bound.
import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { test } from 'node:test'
import { forwardLines } from '../../src/cli/exec.ts'

async function forwarded(chunks: string[]): Promise<string[]> {
  const stream = new PassThrough()
  const written: string[] = []
  forwardLines(stream, (text) => written.push(text))
  for (const chunk of chunks) stream.write(chunk)
  stream.end()
  await new Promise((resolve) => stream.on('end', resolve))
  return written
}

test('whole lines as they come, the rest at the end', async () => {
  assert.deepEqual(await forwarded(['a\nb', 'c\nd']), ['a\n', 'bc\n', 'd\n'])
})

test('an unfinished line is passed on once it passes 64 K characters', async () => {
  const chunk = 'x'.repeat(16 * 1024)
  const written = await forwarded(Array(10).fill(chunk))
  assert.ok(written.length >= 2, `${written.length} writes`)
  for (const text of written)
    assert.ok(text.length <= 64 * 1024 + 16 * 1024 + 1, `${text.length} characters at once`)
  assert.equal(written.join('').replaceAll('\n', '').length, 10 * chunk.length)
})
