import { defineConfig } from 'drizzle-kit'

// The PostgreSQL dialect (DATABASE_URL=postgres://…); drizzle.config.ts is the SQLite one.
export default defineConfig({
  dialect: 'postgresql',
  schema: './server/db/pg/schema.ts',
  out: './migrations-pg'
})
