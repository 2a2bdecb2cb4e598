import { sql, type Kysely } from 'kysely'

// Migrations take Kysely<any>: they must keep working after the Database type moves on.
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('users')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('username', 'text', (c) => c.notNull())
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull().defaultTo('user').check(sql`role in ('user', 'admin')`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('users_email_key', ['email'])
    .execute()
  // The constraint names are part of the contract: the repository maps them to domain errors.
  await sql`create unique index users_username_lower_key on users (lower(username))`.execute(db)
  // Keyset pagination walks (created_at desc, id desc); this index makes every page cost the same.
  await sql`create index users_created_at_id_idx on users (created_at desc, id desc)`.execute(db)
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('users').execute()
}
