import path from 'node:path'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import ts from 'typescript'

/** Fields only an audit entry has besides `action` (domain/audit.ts AuditEntry): they tell an entry from other objects. */
const ENTRY_FIELDS = new Set(['actorId', 'actorLabel', 'subjectUserId'])

/**
 * Every audit event name the server can write, read from its sources (parsed, not run): the `action` of each object
 * literal shaped like an AuditEntry (an `action` beside `actorId`, `actorLabel` or `subjectUserId`), with
 * conditionals, template literals and local constants expanded (`approval.${status}` where
 * `const status = … ? 'withdrawn' : 'refused'`). An action whose names cannot be read off the source is reported
 * under `unknown`, with where it is, so that a new way of writing events cannot slip past.
 */
export function auditEventNames (root: string): { names: Map<string, string[]>, unknown: string[] } {
  const names = new Map<string, string[]>()
  const unknown: string[] = []
  // The table definitions (one per dialect) name the same columns, as column builders, not entries.
  const schemas = new Set([path.join(root, 'server', 'db', 'schema.ts'), path.join(root, 'server', 'db', 'pg', 'schema.ts')])
  for (const file of sourceFiles(path.join(root, 'server')).filter((f) => !schemas.has(f))) {
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true)
    const where = (node: ts.Node): string => `${path.relative(root, file)}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`
    const visit = (node: ts.Node): void => {
      if (ts.isObjectLiteralExpression(node) && isAuditEntry(node)) {
        for (const property of node.properties) {
          if (!ts.isPropertyAssignment(property) || property.name.getText() !== 'action') continue
          // Copying another entry's action (the store writing the row it was given): counted where that entry was made.
          if (ts.isPropertyAccessExpression(property.initializer) && property.initializer.name.text === 'action') continue
          const values = valuesOf(property.initializer)
          if (values === null) unknown.push(`${where(property)}: ${property.initializer.getText()}`)
          else for (const name of values) names.set(name, [...(names.get(name) ?? []), where(property)])
        }
      }
      ts.forEachChild(node, visit)
    }
    visit(source)
  }
  return { names, unknown }
}

function isAuditEntry (literal: ts.ObjectLiteralExpression): boolean {
  const keys = literal.properties.map((property) => property.name?.getText())
  return keys.includes('action') && keys.some((key) => key !== undefined && ENTRY_FIELDS.has(key))
}

/** The string values an expression can take, as far as the source says; null when it does not say. */
function valuesOf (expression: ts.Expression): string[] | null {
  if (ts.isStringLiteral(expression) || ts.isNoSubstitutionTemplateLiteral(expression)) return [expression.text]
  if (ts.isParenthesizedExpression(expression) || ts.isAsExpression(expression)) return valuesOf(expression.expression)
  if (ts.isConditionalExpression(expression)) {
    const a = valuesOf(expression.whenTrue)
    const b = valuesOf(expression.whenFalse)
    return a === null || b === null ? null : [...a, ...b]
  }
  if (ts.isTemplateExpression(expression)) {
    let results = [expression.head.text]
    for (const span of expression.templateSpans) {
      const parts = valuesOf(span.expression)
      if (parts === null) return null
      results = results.flatMap((prefix) => parts.map((part) => prefix + part + span.literal.text))
    }
    return results
  }
  if (ts.isIdentifier(expression)) {
    const initializer = localConstant(expression)
    return initializer === undefined ? null : valuesOf(initializer)
  }
  return null
}

/** The initializer of the `const` an identifier names, declared in a block around it. */
function localConstant (identifier: ts.Identifier): ts.Expression | undefined {
  for (let scope: ts.Node | undefined = identifier.parent; scope !== undefined; scope = scope.parent) {
    if (!ts.isBlock(scope) && !ts.isSourceFile(scope)) continue
    for (const statement of scope.statements) {
      if (!ts.isVariableStatement(statement) || (statement.declarationList.flags & ts.NodeFlags.Const) === 0) continue
      for (const declaration of statement.declarationList.declarations) {
        if (ts.isIdentifier(declaration.name) && declaration.name.text === identifier.text && declaration.initializer !== undefined) return declaration.initializer
      }
    }
  }
  return undefined
}

function sourceFiles (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name)
    return statSync(full).isDirectory() ? sourceFiles(full) : name.endsWith('.ts') && !name.endsWith('.d.ts') ? [full] : []
  })
}
