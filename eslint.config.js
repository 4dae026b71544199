// Only what the type checker cannot see: a promise nobody awaits. Store calls became asynchronous for PostgreSQL
// (issue #18), and a forgotten await on a check (a code, a lock, a pass) would let the request go on unchecked.
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'static/**', 'migrations/**', 'migrations-pg/**', 'bin/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname }
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      // node:test's test() and describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }]
      }],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: true, properties: true, returns: false, variables: true, attributes: false, inheritedMethods: true } }],
      '@typescript-eslint/await-thenable': 'error'
    }
  }
)
