import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fieldAria } from '../../server/web/field-aria.ts'

test('a field is described by its hint, then by its error, and marked invalid only when it has an error', () => {
  assert.equal(fieldAria({}, 'name', 'name-hint'), ' aria-describedby="name-hint"')
  assert.equal(fieldAria({ name: 'Give the campaign a name.' }, 'name', 'name-hint'), ' aria-describedby="name-hint name-error" aria-invalid="true"')
  assert.equal(fieldAria({ email: 'No user has this address.' }, 'email'), ' aria-describedby="email-error" aria-invalid="true"')
  assert.equal(fieldAria({ other: 'Wrong.' }, 'email'), '')
  assert.equal(fieldAria({ email: '' }, 'email', null), '', 'an empty message is no error')
})

test('what a template passes cannot end the attribute: every id is written escaped', () => {
  assert.equal(fieldAria({ 'a"b': 'bad' }, 'a"b', '<hint>'), ' aria-describedby="&lt;hint&gt; a&quot;b-error" aria-invalid="true"')
})
