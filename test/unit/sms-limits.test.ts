import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError } from '../../server/config.ts'
import { addressKey } from '../../server/domain/sms-limits.ts'
import { testConfig } from '../helpers/app.ts'

test('texts are counted per IPv4 address, and per /64 for IPv6, where one subscriber can pick any address', () => {
  assert.equal(addressKey('203.0.113.5'), '203.0.113.5')
  assert.equal(addressKey('::ffff:203.0.113.5'), '203.0.113.5')
  assert.equal(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64')
  assert.equal(addressKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64')
  assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64')
  assert.equal(addressKey('::1'), '0:0:0:0::/64')
  assert.equal(addressKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64')
  assert.notEqual(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:3::1'))
})

test('by default only the default region\'s numbers are texted, 5 an hour per number, 20 per address, 500 in all; each is configurable', () => {
  assert.deepEqual(testConfig({ PHONE_DEFAULT_REGION: 'de' }).smsLimits, { allowedCountries: ['DE'], perNumberPerHour: 5, perAddressPerHour: 20, perHour: 500 })
  const tuned = testConfig({ SMS_ALLOWED_COUNTRIES: 'us, ca,US', SMS_MAX_PER_NUMBER_PER_HOUR: '3', SMS_MAX_PER_ADDRESS_PER_HOUR: '50', SMS_MAX_PER_HOUR: '2000' }).smsLimits
  assert.deepEqual(tuned, { allowedCountries: ['US', 'CA'], perNumberPerHour: 3, perAddressPerHour: 50, perHour: 2000 })
  assert.throws(() => testConfig({ SMS_ALLOWED_COUNTRIES: 'US,XX' }), (err: ConfigError) => err.variable === 'SMS_ALLOWED_COUNTRIES' && /"XX"/.test(err.message))
  assert.throws(() => testConfig({ SMS_MAX_PER_HOUR: '0' }), (err: ConfigError) => err.variable === 'SMS_MAX_PER_HOUR')
})
