/** Reading what people type into form fields: dates and whole numbers, strictly. */

/** yyyy-mm-dd as UTC midnight; null for an empty field; Invalid Date for anything else (or a day that does not exist). */
export function parseDay (text: string): Date | null {
  const value = text.trim()
  if (value === '') return null
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value)
  if (match === null) return new Date(Number.NaN)
  const date = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])))
  // Date.UTC rolls 2027-02-30 over into March; such a day was never on the calendar.
  return day(date) === value ? date : new Date(Number.NaN)
}

/** Digits only: "1e3", "0x10" and "14.5" are not a number of days. */
export function parseWhole (text: string): number {
  const value = text.trim()
  return /^\d{1,6}$/.test(value) ? Number(value) : Number.NaN
}

/** The UTC day of an instant, as a date field shows it. */
export function day (date: Date): string {
  return date.toISOString().slice(0, 10)
}
