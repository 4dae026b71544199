import { test } from 'node:test'
import assert from 'node:assert/strict'
import { firstLineNotUtf8, planImport, unclosedQuoteLine } from '../../server/domain/user-import.ts'

const header = ['email', 'display_name', 'phone', 'groups', 'privileged']
const rows = (...lines: string[][]) => lines.map((fields, i) => ({ line: i + 2, fields }))

test('valid rows are normalised: lower-case email, E.164 phone, split groups, boolean privileged', () => {
  const plan = planImport(header, rows(['Ann@Example.COM ', 'Ann Lee', '(202) 555-0143', 'sales; emea|sales', 'yes']), 'US')
  assert.deepEqual(plan.problems, [])
  assert.deepEqual(plan.rows, [{ email: 'ann@example.com', displayName: 'Ann Lee', phone: '+12025550143', groups: ['sales', 'emea'], privileged: true }])
})

test('every invalid row is reported with its line number and reason', () => {
  const plan = planImport(header, rows(
    ['ok@example.com', 'Ok', '', '', ''],
    ['not-an-email', 'Bad', '', '', 'false'],
    ['b@example.com', '', '12', '', 'maybe'],
    ['ok@example.com', 'Twice', '', '', '']
  ), 'US')
  assert.equal(plan.rows.length, 1)
  assert.deepEqual(plan.problems.map((p) => p.line), [3, 4, 5])
  assert.match(plan.problems[0].reason, /not an email/)
  assert.match(plan.problems[1].reason, /display_name is empty/)
  assert.match(plan.problems[1].reason, /not a valid phone/)
  assert.match(plan.problems[1].reason, /privileged must be true or false/)
  assert.match(plan.problems[2].reason, /already appears on line 2/)
})

test('a header without the expected columns is refused as a whole', () => {
  const plan = planImport(['mail', 'name'], rows(['a@b.example', 'A']), 'US')
  assert.equal(plan.rows.length, 0)
  assert.equal(plan.problems[0].line, 1)
  assert.match(plan.problems[0].reason, /missing email, display_name, phone, groups, privileged/)
})

test('a display name with a line break or control character is refused', () => {
  const plan = planImport(header, rows(['a@example.com', 'Bob\r\nB', '', '', '']), 'US')
  assert.equal(plan.rows.length, 0)
  assert.match(plan.problems[0].reason, /line break or control character/)
})

test('the first line that is not UTF-8 is found (a Latin-1 "é" on line 3), and UTF-8 text of any script passes', () => {
  const latin1 = Buffer.concat([
    Buffer.from('email,display_name\r\nann@example.org,Ann\r\n'),
    Buffer.from('rene@example.org,Ren\xe9 Dupr\xe9\r\n', 'latin1'),
    Buffer.from('zoe@example.org,Zo\xeb\r\n', 'latin1')
  ])
  assert.equal(firstLineNotUtf8(latin1), 3)
  assert.equal(firstLineNotUtf8(Buffer.from('\ufeffemail,display_name\nrene@example.org,René Dupré\nmei@example.org,李美 🌸\n')), undefined)
  // A character cut off at the end of the file is not UTF-8 either.
  assert.equal(firstLineNotUtf8(Buffer.from('a\nb\n\xe2\x82', 'latin1')), 3)
})

test('an unclosed quote is placed on the line where it opens, not where the file ends', () => {
  assert.equal(unclosedQuoteLine('email,display_name\na@example.org,A\n\nb@example.org,B\n"c@example.org,C\nd@example.org,D\n'), 5)
  // Quoted line breaks and doubled quotes that do close are stepped over.
  assert.equal(unclosedQuoteLine('\ufeff"a","multi\r\nline ""quoted"" name"\r\nb,"open\r\nc,d\r\n'), 3)
  assert.equal(unclosedQuoteLine('a,"closed"\nb,"also\nclosed"\n'), undefined)
  // A quote inside an unquoted field does not open one.
  assert.equal(unclosedQuoteLine('a,5" screen\nb,c\n'), undefined)
})
