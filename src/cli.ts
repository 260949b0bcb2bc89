import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createApp } from './app.js';
import type { ClientRegistration } from './auth/clients.js';
import type { Role } from './auth/users.js';
import { loadConfig } from './config.js';
import { FhirDefinitions } from './fhir/definitions.js';
import { projectRoot } from './fhir/operations.js';
import { createLogger } from './logger.js';
import { migrate } from './storage/migrations.js';
import { openSql } from './storage/sql.js';

const USAGE = `carelens admin commands (same DATABASE_URL / DATA_DIR as the server):

  npm run admin -- register-client --name <name> --scope "<scopes>"
        [--redirect-uri <uri>]... [--auth none|client_secret_basic|client_secret_post|private_key_jwt]
        [--jwks-uri <url> | --jwks-file <file>] [--client-id <id>]
      An app that launches has redirect URIs; a backend service has none and authenticates with
      private_key_jwt (or a secret). A generated client_secret is printed once.
  npm run admin -- list-clients
  npm run admin -- create-user --username <name> --role patient|nurse|physician|admin [--fhir-user <Type/id>]
      The password is read from the CARELENS_NEW_PASSWORD environment variable. Admins get a TOTP
      secret, printed once as an otpauth:// URI.
  npm run admin -- list-users
  npm run admin -- reindex [--type <ResourceType>]
      Rebuilds the search index of the stored resources (all, or one type) after the indexing rules
      change, in batches; the server can keep running.
`;

/** Operator commands for clients and users, run against the server's database without the HTTP API. */
async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  const { values } = parseArgs({
    args: rest,
    options: {
      name: { type: 'string' },
      scope: { type: 'string' },
      'redirect-uri': { type: 'string', multiple: true },
      auth: { type: 'string' },
      'jwks-uri': { type: 'string' },
      'jwks-file': { type: 'string' },
      'client-id': { type: 'string' },
      username: { type: 'string' },
      role: { type: 'string' },
      'fhir-user': { type: 'string' },
      type: { type: 'string' },
    },
  });
  if (!command || !['register-client', 'list-clients', 'create-user', 'list-users', 'reindex'].includes(command)) {
    process.stdout.write(USAGE);
    process.exit(command ? 2 : 0);
  }
  const config = loadConfig(process.env, []);
  const logger = createLogger('warn');
  const sql = await openSql({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 1 });
  await migrate(sql);
  const app = await createApp(config, sql, new FhirDefinitions(join(projectRoot(), 'profiles')), logger);
  try {
    switch (command) {
      case 'reindex': {
        if (values.type && !app.router.defs.isResourceType(values.type)) {
          throw new Error(`--type ${values.type} is not a FHIR resource type`);
        }
        process.stdout.write(`reindexed ${await app.router.repo.reindex(values.type)} resources\n`);
        break;
      }
      case 'register-client': {
        const redirectUris = values['redirect-uri'] ?? [];
        const registration: ClientRegistration = {
          client_name: required(values.name, '--name'),
          scope: required(values.scope, '--scope'),
          redirect_uris: redirectUris,
          token_endpoint_auth_method: (values.auth ?? (redirectUris.length ? 'none' : 'private_key_jwt')) as ClientRegistration['token_endpoint_auth_method'],
          ...(values['client-id'] ? { client_id: values['client-id'] } : {}),
          ...(values['jwks-uri'] ? { jwks_uri: values['jwks-uri'] } : {}),
          ...(values['jwks-file'] ? { jwks: JSON.parse(readFileSync(values['jwks-file'], 'utf8')) as ClientRegistration['jwks'] } : {}),
        };
        print(await app.auth.clients.register(registration));
        break;
      }
      case 'list-clients':
        print(await app.auth.clients.list());
        break;
      case 'create-user': {
        const user = await app.auth.users.enrol({
          username: required(values.username, '--username'),
          password: required(process.env.CARELENS_NEW_PASSWORD, 'CARELENS_NEW_PASSWORD'),
          role: required(values.role, '--role') as Role,
          ...(values['fhir-user'] ? { fhirUser: values['fhir-user'] } : {}),
        });
        print(user);
        break;
      }
      case 'list-users':
        print(await app.auth.users.list());
        break;
    }
  } finally {
    await sql.close();
  }
}

function required(value: string | undefined, name: string): string {
  if (!value) {
    throw new Error(`${name} is required`);
  }
  return value;
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`carelens admin: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
