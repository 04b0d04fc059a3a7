/** /tokens: the API's own tokens (admin only). The secret is in the answer to create, and nowhere else ever. */
import { z } from 'zod';
import { createToken, parseLifetime } from '../../registry/tokens.js';
import { ApiError } from '../errors.js';
import { defineOperation } from '../operation.js';
import { role, token } from '../schemas.js';
import type { ApiToken } from '../../registry/types.js';
import { UsageError } from '../../util/errors.js';

const publicToken = ({ name, role: r, created, expires, lastUsed, revoked }: ApiToken) => ({ name, role: r, created, expires, lastUsed, revoked });
const nameParam = z.strictObject({ name: z.string().min(1) });

export const tokenOperations = [
  defineOperation({
    id: 'tokens.list',
    method: 'get',
    path: '/tokens',
    tag: 'tokens',
    summary: 'Tokens: name, role, created, last used, expires, revoked (never the secret)',
    access: 'admin',
    response: { status: 200, description: 'every token', schema: z.strictObject({ items: z.array(token) }) },
    handler: async ({ api }) => ({ items: (await api.registry.listTokens()).map(publicToken) }),
  }),
  defineOperation({
    id: 'tokens.create',
    method: 'post',
    path: '/tokens',
    tag: 'tokens',
    summary: 'Create a token; the answer holds its secret, shown this once',
    access: 'admin',
    body: z.strictObject({
      name: z.string().min(1).max(64),
      role,
      expires: z.string().optional().meta({ description: 'lifetime: 90d, 12h, 2w, 1y; none: never expires' }),
    }),
    response: { status: 201, description: 'created', schema: z.strictObject({ token, secret: z.string() }).meta({ id: 'NewToken' }) },
    target: ({ body }) => body.name,
    handler: async ({ api, body }) => {
      let expiresInMs: number | null = null;
      try {
        if (body.expires !== undefined) expiresInMs = parseLifetime(body.expires);
      } catch (err) {
        if (err instanceof UsageError) throw new ApiError(400, 'invalid', `body.expires: ${JSON.stringify(body.expires)} is not a lifetime such as 90d, 12h, 2w`, 'body.expires');
        throw err;
      }
      const { token: t, secret } = await createToken(api.registry, { name: body.name, role: body.role as ApiToken['role'], expiresInMs });
      return { token: publicToken(t), secret };
    },
  }),
  defineOperation({
    id: 'tokens.revoke',
    method: 'delete',
    path: '/tokens/:name',
    tag: 'tokens',
    summary: 'Revoke a token: refused from now on, kept in the list and the audit log',
    access: 'admin',
    params: nameParam,
    response: { status: 200, description: 'revoked', schema: token },
    target: ({ params }) => params.name,
    handler: async ({ api, params }) => publicToken(await api.registry.revokeToken(params.name)),
  }),
];
