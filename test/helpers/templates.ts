import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { VIEWS_DIR } from '../../server/web/plugins/views.ts'

/** Every template of the portal (pages, partials, e-mails), as [path under views/, text]. */
export function templates (dir = VIEWS_DIR): Array<[string, string]> {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.eta'))
    .map((entry) => {
      const file = path.join(entry.parentPath, entry.name)
      return [path.relative(VIEWS_DIR, file), readFileSync(file, 'utf8')]
    })
}
