/**
 * /session: the web UI's login. POST trades an API token for a session cookie (HttpOnly,
 * SameSite=Strict; the cookie holds a random id, never the token) and answers the session's CSRF
 * secret; GET says who the session is (and its CSRF secret again, for a reloaded page); DELETE logs out.
 */
import type { Request, Response } from 'express';
import { z } from 'zod';
import { hashToken } from '../../registry/tokens.js';
import { callerOfHash } from '../auth.js';
import { ApiError } from '../errors.js';
import { defineOperation, Reply } from '../operation.js';
import { epochMs, role } from '../schemas.js';
import { cookieValue, SESSION_COOKIE, type SessionStore } from '../sessions.js';

const sessionInfo = z
  .strictObject({
    name: z.string().meta({ description: 'the token the session was opened with' }),
    role,
    csrf: z.string().nullable().meta({ description: 'send it as X-CSRF-Token on every POST, PATCH, PUT, DELETE made with the cookie; null: not a session (Bearer)' }),
    expires: epochMs.nullable().meta({ description: 'when the session ends unless used before (renewed by use); null: not a session' }),
  })
  .meta({ id: 'Session' });

function setCookie(req: Request, res: Response, value: string, maxAgeSec: number): void {
  const secure = req.secure ? '; Secure' : '';
  res.append('Set-Cookie', `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSec}${secure}`);
}

function endSession(sessions: SessionStore, req: Request): void {
  const id = cookieValue(req.headers.cookie, SESSION_COOKIE);
  if (id !== undefined) sessions.delete(id);
}

export const sessionOperations = [
  defineOperation({
    id: 'session.create',
    method: 'post',
    path: '/session',
    tag: 'session',
    summary: 'Log in (the web UI): an API token for a session cookie, HttpOnly and SameSite=Strict',
    description:
      'The cookie holds a random session id, never the token; the daemon re-checks the token on every request, so revoking it ends its sessions. Requests made with the cookie need no Authorization header; those that change something must send the answer\'s `csrf` as `X-CSRF-Token`. Sessions end at logout, after 8 h unused, after 24 h, or when the daemon restarts.',
    access: 'public',
    body: z.strictObject({ token: z.string().min(1).meta({ description: 'an API token secret (pvd_...)' }) }).meta({ id: 'Login' }),
    response: { status: 201, description: 'logged in; Set-Cookie carries the session', schema: sessionInfo },
    handler: async ({ api, body, req, res }) => {
      const caller = await callerOfHash(api.registry, hashToken(body.token.trim())).catch((err: unknown) => {
        throw err instanceof ApiError ? new ApiError(401, 'unauthorized', `login refused: ${err.message}`) : err;
      });
      endSession(api.sessions, req);
      const { id, session } = api.sessions.create(hashToken(body.token.trim()));
      setCookie(req, res, id, Math.floor(api.sessions.maxMs / 1000));
      api.log.info({ token: caller.name, role: caller.role, addr: req.socket.remoteAddress }, `api: ${caller.name} logged in (web UI session)`);
      return new Reply(201, { name: caller.name, role: caller.role, csrf: session.csrf, expires: session.expires }, { 'Cache-Control': 'no-store' });
    },
  }),
  defineOperation({
    id: 'session.get',
    method: 'get',
    path: '/session',
    tag: 'session',
    summary: 'The session of this cookie: who, role, CSRF secret, when it ends',
    access: 'viewer',
    response: { status: 200, description: 'the caller', schema: sessionInfo },
    handler: async ({ caller, res }) => {
      res.setHeader('Cache-Control', 'no-store');
      return { name: caller!.name, role: caller!.role, csrf: caller!.session?.csrf ?? null, expires: caller!.session?.expires ?? null };
    },
  }),
  defineOperation({
    id: 'session.delete',
    method: 'delete',
    path: '/session',
    tag: 'session',
    summary: 'Log out: the session ends and its cookie is cleared',
    access: 'viewer',
    response: { status: 204, description: 'logged out' },
    handler: async ({ api, req, res }) => {
      endSession(api.sessions, req);
      setCookie(req, res, '', 0);
      return undefined;
    },
  }),
];
