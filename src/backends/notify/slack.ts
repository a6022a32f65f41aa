import type { NotificationMessage } from '../../domain/notifications.ts';
import { postJson } from './http-post.ts';
import { shownUrl, type Notifier } from './port.ts';

/** Slack mrkdwn reserves these three characters; everything else is shown as written. */
const escape = (text: string) => text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
/** Slack refuses section texts over 3000 characters. */
const clip = (text: string, max = 2900) => (text.length > max ? `${text.slice(0, max)}…` : text);

/** The message as a Slack incoming webhook takes it: `text` for notifications, blocks for the channel. */
export function slackPayload(message: NotificationMessage): { text: string; blocks: unknown[] } {
  const text = `[${message.env}] ${message.summary}`;
  const facts = [
    ['Event', message.event],
    ['Tenant', message.tenant_id],
    ['Pipeline', message.pipeline_id],
    ['Run', message.run_id],
    ['Status', message.status],
    ['Exit code', message.exit_code === undefined ? undefined : String(message.exit_code)],
  ].filter((fact): fact is [string, string] => fact[1] !== undefined);
  const blocks: unknown[] = [
    { type: 'section', text: { type: 'mrkdwn', text: `*${escape(clip(text))}*` } },
    { type: 'section', fields: facts.map(([name, value]) => ({ type: 'mrkdwn', text: `*${name}*\n${escape(value)}` })) },
  ];
  if (message.error) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `\`\`\`${escape(clip(message.error))}\`\`\`` } });
  const links = Object.values(message.links ?? {});
  if (links.length > 0) blocks.push({ type: 'context', elements: links.map((link) => ({ type: 'mrkdwn', text: escape(link) })) });
  return { text, blocks };
}

/** A Slack incoming webhook: a readable message (its URL is itself the secret, so it is never shown). */
export class SlackNotifier implements Notifier {
  readonly describe: string;
  readonly #url: string;
  readonly #allowPrivate: boolean;

  constructor(options: { url: string; allowPrivate: boolean }) {
    this.#url = options.url;
    this.#allowPrivate = options.allowPrivate;
    this.describe = shownUrl(options.url);
  }

  send(message: NotificationMessage, signal: AbortSignal): Promise<string> {
    const body = JSON.stringify(slackPayload(message));
    return postJson({ url: this.#url, body, headers: { 'user-agent': 'convergence-notifier' }, allowPrivate: this.#allowPrivate, signal });
  }
}
