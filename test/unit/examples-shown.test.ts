import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { test } from 'node:test'

// Every file of examples/ is shown verbatim in README.md or a page of docs/; the examples are run by
// the integration tests, so what the pages show is what was tested.
test('every example file is shown verbatim in README.md or docs/', () => {
  const root = new URL('../../', import.meta.url)
  const docs = new URL('docs/', root)
  const pages = [
    readFileSync(new URL('README.md', root), 'utf8'),
    ...readdirSync(docs)
      .filter((f) => f.endsWith('.md'))
      .map((f) => readFileSync(new URL(f, docs), 'utf8')),
  ]
  const dir = new URL('examples/', root)
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'))
  assert.ok(files.length >= 6, `examples/ holds ${files.length} files`)
  const unshown = files.filter((file) => {
    const source = readFileSync(new URL(file, dir), 'utf8').trimEnd()
    return !pages.some((page) => page.includes(`\`\`\`ts\n${source}\n\`\`\``))
  })
  assert.deepEqual(unshown, [], 'examples not shown as they are in README.md or docs/')
})
