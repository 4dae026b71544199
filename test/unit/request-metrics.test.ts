import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RequestMetrics } from '../../server/web/plugins/metrics.ts'

test('request metrics are written as Prometheus text: a count per label set, cumulative buckets, +Inf, sum and count', () => {
  const metrics = new RequestMetrics()
  metrics.record('GET', '/', 200, 0.004)
  metrics.record('GET', '/', 200, 0.005)
  metrics.record('GET', '/', 200, 0.2)
  metrics.record('GET', '/', 200, 7)
  metrics.record('POST', '/', 303, 0.03)
  metrics.record('GET', '/', 404, 0.001)
  const lines = metrics.text().split('\n')
  assert.deepEqual(lines.filter((line) => line.startsWith('http_requests_total')), [
    'http_requests_total{method="GET",route="/",status="200"} 4',
    'http_requests_total{method="GET",route="/",status="404"} 1',
    'http_requests_total{method="POST",route="/",status="303"} 1'
  ])
  const ok = lines.filter((line) => line.includes('method="GET",route="/",status="200"') && line.startsWith('http_request_duration_seconds'))
  assert.deepEqual(ok, [
    'http_request_duration_seconds_bucket{le="0.005",method="GET",route="/",status="200"} 2',
    'http_request_duration_seconds_bucket{le="0.01",method="GET",route="/",status="200"} 2',
    'http_request_duration_seconds_bucket{le="0.025",method="GET",route="/",status="200"} 2',
    'http_request_duration_seconds_bucket{le="0.05",method="GET",route="/",status="200"} 2',
    'http_request_duration_seconds_bucket{le="0.1",method="GET",route="/",status="200"} 2',
    'http_request_duration_seconds_bucket{le="0.25",method="GET",route="/",status="200"} 3',
    'http_request_duration_seconds_bucket{le="0.5",method="GET",route="/",status="200"} 3',
    'http_request_duration_seconds_bucket{le="1",method="GET",route="/",status="200"} 3',
    'http_request_duration_seconds_bucket{le="2.5",method="GET",route="/",status="200"} 3',
    'http_request_duration_seconds_bucket{le="5",method="GET",route="/",status="200"} 3',
    'http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/",status="200"} 4',
    'http_request_duration_seconds_sum{method="GET",route="/",status="200"} 7.209',
    'http_request_duration_seconds_count{method="GET",route="/",status="200"} 4'
  ])
  assert.deepEqual(lines.filter((line) => line.startsWith('# TYPE')), ['# TYPE http_requests_total counter', '# TYPE http_request_duration_seconds histogram'])
})

test('a label value with a backslash, a double quote or a line break is escaped, so it cannot end its label or its line', () => {
  const metrics = new RequestMetrics()
  metrics.record('GET', '/odd\\"route\n{x}', 200, 0.001)
  assert.match(metrics.text(), /^http_requests_total\{method="GET",route="\/odd\\\\\\"route\\n\{x\}",status="200"\} 1$/m)
})

test('before any request the metrics are declared, with no samples', () => {
  const text = new RequestMetrics().text()
  assert.match(text, /^# TYPE http_requests_total counter$/m)
  assert.doesNotMatch(text, /^http_/m)
})
