/** XML as IAM's Query protocol writes it (contracts §2.1): namespaced envelopes, lists as <member> elements. */
export const IAM_NAMESPACE = 'https://iam.amazonaws.com/doc/2010-05-08/'

export type XmlValue = string | number | boolean | Date | null | undefined | XmlNode | XmlValue[]
export interface XmlNode { [element: string]: XmlValue }

export function escapeXml (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/** Serialises members in insertion order; arrays become <member> lists, undefined/null members are left out. */
export function toXml (node: XmlNode): string {
  let out = ''
  for (const [name, value] of Object.entries(node)) {
    if (value === undefined || value === null) continue
    out += `<${name}>${valueXml(value)}</${name}>`
  }
  return out
}

function valueXml (value: Exclude<XmlValue, null | undefined>): string {
  if (Array.isArray(value)) return value.map((item) => item === null || item === undefined ? '' : `<member>${valueXml(item)}</member>`).join('')
  if (value instanceof Date) return isoSeconds(value)
  if (typeof value === 'object') return toXml(value)
  return escapeXml(String(value))
}

/** IAM timestamps: ISO-8601 without milliseconds, e.g. 2024-01-02T03:04:05Z. */
export function isoSeconds (date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`
}

export function successXml (action: string, result: XmlNode | null, requestId: string): string {
  const body = result === null ? '' : `<${action}Result>${toXml(result)}</${action}Result>`
  return `<${action}Response xmlns="${IAM_NAMESPACE}">${body}<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`
}

export function errorXml (status: number, code: string, message: string, requestId: string): string {
  const type = status >= 500 ? 'Receiver' : 'Sender'
  return `<ErrorResponse xmlns="${IAM_NAMESPACE}"><Error><Type>${type}</Type><Code>${escapeXml(code)}</Code><Message>${escapeXml(message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`
}
