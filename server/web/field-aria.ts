import { escapeHtml } from '../domain/i18n.ts'

/**
 * The attributes that tie a form field to its hint and to its error, for a template to print raw:
 * ` aria-describedby="<hint> <field>-error"` (the hint, then the error when the field has one; nothing when neither
 * is there) and ` aria-invalid="true"` when the field has an error. `fields` holds the form's errors by field name,
 * as the admin forms pass them to their pages (`it.fields`).
 *
 *   <input id="email" name="email" …<%~ it.fieldAria(it.fields, 'email', 'email-hint') %>>
 *
 * Every id is written escaped, so what a template passes cannot end the attribute.
 */
export function fieldAria (fields: Readonly<Record<string, unknown>>, field: string, hint: string | null = null): string {
  const error = fields[field] ? `${field}-error` : null
  const ids = [hint, error].filter(Boolean).join(' ')
  return (ids === '' ? '' : ` aria-describedby="${escapeHtml(ids)}"`) + (error === null ? '' : ' aria-invalid="true"')
}
