import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { test } from 'node:test'

// The README's quick start shows every file of examples/ verbatim; the examples are run by the
// integration tests, so what the README shows is what was tested.
test('README shows each example file verbatim', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const dir = new URL('../../examples/', import.meta.url)
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'))
  assert.equal(files.length, 5)
  for (const file of files) {
    const source = readFileSync(new URL(file, dir), 'utf8').trimEnd()
    assert.ok(
      readme.includes(`\`\`\`ts\n${source}\n\`\`\``),
      `README.md does not show examples/${file} as it is`,
    )
  }
})
