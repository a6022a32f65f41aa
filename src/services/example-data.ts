/**
 * Deterministic sample AI usage records for the demo tenant: the same inputs always give the
 * same rows, so the demo's tables and counts are reproducible.
 */
export interface UsageRecord {
  request_id: string;
  usage_date: string;
  provider: string;
  model: string;
  user_email: string;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
}

const MODELS: Array<[provider: string, model: string, usdPerMTokIn: number, usdPerMTokOut: number]> = [
  ['anthropic', 'claude-sonnet-4', 3, 15],
  ['anthropic', 'claude-haiku-4', 0.8, 4],
  ['openai', 'gpt-4.1', 2, 8],
  ['openai', 'gpt-4.1-mini', 0.4, 1.6],
  ['cursor', 'cursor-small', 0.2, 0.8],
];

/** mulberry32: a tiny seeded PRNG, enough for sample data. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function usageRecords(day: string, count: number, prefix = 'req'): UsageRecord[] {
  const next = random(Number(day.replaceAll('-', '')) ^ prefix.length);
  const records: UsageRecord[] = [];
  for (let i = 0; i < count; i++) {
    const [provider, model, inPrice, outPrice] = MODELS[Math.floor(next() * MODELS.length)]!;
    const input = 200 + Math.floor(next() * 20_000);
    const output = 50 + Math.floor(next() * 4_000);
    records.push({
      request_id: `${prefix}_${day.replaceAll('-', '')}_${String(i).padStart(5, '0')}`,
      usage_date: day,
      provider,
      model,
      user_email: `user${String(1 + Math.floor(next() * 12)).padStart(2, '0')}@acme.example`,
      input_tokens: input,
      output_tokens: output,
      cost_usd: Math.round(((input * inPrice + output * outPrice) / 1e6) * 1e6) / 1e6,
    });
  }
  return records;
}

export function toCsv(records: UsageRecord[]): string {
  const header = 'request_id,usage_date,provider,model,user_email,input_tokens,output_tokens,cost_usd';
  return `${[header, ...records.map((r) => [r.request_id, r.usage_date, r.provider, r.model, r.user_email, r.input_tokens, r.output_tokens, r.cost_usd].join(','))].join('\n')}\n`;
}

export const dayAfter = (day: string, n: number) => new Date(Date.parse(`${day}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);
