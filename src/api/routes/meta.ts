/** /healthz, /whoami and /audit. */
import { z } from 'zod';
import { defineOperation } from '../operation.js';
import { auditEntry, epochMs, limitParam, page, role } from '../schemas.js';

export const metaOperations = [
  defineOperation({
    id: 'health.get',
    method: 'get',
    path: '/healthz',
    tag: 'meta',
    summary: 'Is the daemon up, since when, and what it serves (no token needed)',
    access: 'public',
    response: {
      status: 200,
      description: 'up',
      schema: z
        .strictObject({
          status: z.literal('ok'),
          startedAt: epochMs,
          uptime: z.number().meta({ description: 'seconds' }),
          services: z.array(z.strictObject({ name: z.string(), address: z.string() })),
          database: z
            .strictObject({
              reachable: z.boolean(),
              since: epochMs.nullable().meta({ description: 'out of reach since (the first failed round trip)' }),
              reason: z.string().nullable(),
            })
            .meta({ description: 'whether the registry database answered its last round trip (PostgreSQL); meanwhile known machines are answered from memory and writes wait' }),
        })
        .meta({ id: 'Health' }),
    },
    handler: async ({ api }) => ({
      status: 'ok' as const,
      startedAt: api.startedAt,
      uptime: (Date.now() - api.startedAt) / 1000,
      services: api.services(),
      database: api.registry.databaseState?.() ?? { reachable: true, since: null, reason: null },
    }),
  }),
  defineOperation({
    id: 'whoami.get',
    method: 'get',
    path: '/whoami',
    tag: 'meta',
    summary: 'The token the request was made with: its name and role',
    access: 'viewer',
    response: { status: 200, description: 'the caller', schema: z.strictObject({ name: z.string(), role }).meta({ id: 'Whoami' }) },
    handler: async ({ caller }) => ({ name: caller!.name, role: caller!.role }),
  }),
  defineOperation({
    id: 'audit.list',
    method: 'get',
    path: '/audit',
    tag: 'meta',
    summary: 'Every change made through the API: who, what, when, and how it ended; newest first',
    access: 'admin',
    query: z.strictObject({
      who: z.string().optional().meta({ description: 'only the changes of this token' }),
      cursor: z.string().regex(/^\d+$/, 'not a cursor from a previous page').optional(),
      limit: limitParam(100, 1000),
    }),
    response: { status: 200, description: 'a page of entries', schema: page(auditEntry, 'AuditPage') },
    handler: async ({ api, query }) => {
      const items = await api.registry.listAudit({ before: query.cursor === undefined ? undefined : Number(query.cursor), limit: query.limit + 1, who: query.who });
      const more = items.length > query.limit;
      if (more) items.pop();
      return { items, next: more ? String(items.at(-1)!.id) : null };
    },
  }),
];
