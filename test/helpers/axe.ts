import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { AxeResults, Result } from 'axe-core'
import type { Page } from 'playwright-core'

const require = createRequire(import.meta.url)
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8')

/** WCAG 2.1 A and AA plus axe's best practices (landmarks, one h1, regions). */
export const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']

/**
 * Runs axe-core in the page as it is now. The pages' CSP forbids inline scripts, so axe is not added as a
 * <script>: page.evaluate goes through the DevTools protocol, which CSP does not govern.
 */
export async function axeViolations (page: Page): Promise<Result[]> {
  await page.evaluate(axeSource)
  const results = await page.evaluate(async (tags) => {
    const axe = (window as unknown as { axe: { run(context: Document, options: object): Promise<AxeResults> } }).axe
    return axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] })
  }, AXE_TAGS)
  return results.violations
}

/** One block per rule: what is wrong, how bad, and which elements, so a failed assertion says what to fix. */
export function formatViolations (violations: Result[]): string {
  return violations.map((violation) => {
    const nodes = violation.nodes.map((node) => {
      const summary = node.failureSummary?.split('\n').map((line) => line.trim()).filter((line) => line !== '').join(' ')
      return `    ${node.target.join(' ')}${summary === undefined ? '' : `\n      ${summary}`}`
    })
    return `  [${violation.impact ?? 'unknown'}] ${violation.id}: ${violation.help}\n    ${violation.helpUrl}\n${nodes.join('\n')}`
  }).join('\n')
}

/** Throws a readable list of violations, labelled with which page it was; passes when axe finds none. */
export async function assertNoAxeViolations (page: Page, label: string): Promise<void> {
  const violations = await axeViolations(page)
  if (violations.length > 0) {
    throw new Error(`axe found ${violations.length} accessibility problem(s) on ${label} (${page.url()}):\n${formatViolations(violations)}`)
  }
}
