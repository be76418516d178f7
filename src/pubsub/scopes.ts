/**
 * Topic scoping of a pub/sub component, as daprd reads it (dapr/dapr pkg/scopes, pkg/runtime/pubsub/adapter.go):
 * `allowedTopics` and `protectedTopics` (comma-separated topics), `publishingScopes` and `subscriptionScopes`
 * (`app1=topic1,topic2;app2=topic3`). Names are matched case-insensitively, spaces are dropped.
 */

export interface TopicScopes {
  allowed: string[];
  protected: string[];
  /** The topics this app may publish to, when publishingScopes names it (else empty: no restriction of its own). */
  publishing: string[];
  subscribing: string[];
}

function param(metadata: Readonly<Record<string, string>>, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(metadata)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

function unique(items: Iterable<string>): string[] {
  return [...new Set(items)];
}

function topicList(metadata: Readonly<Record<string, string>>, name: string): string[] {
  const v = param(metadata, name);
  if (!v) return [];
  return unique(v.replaceAll(' ', '').split(','));
}

function scopedTopics(metadata: Readonly<Record<string, string>>, name: string, appId: string): string[] {
  const v = param(metadata, name);
  if (!v) return [];
  const out: string[] = [];
  for (const app of v.replaceAll(' ', '').split(';')) {
    const parts = app.split('=');
    if (parts.length < 2 || parts[0] !== appId) continue;
    out.push(...(parts[1] ?? '').split(','));
  }
  return unique(out);
}

export function topicScopes(metadata: Readonly<Record<string, string>>, appId: string): TopicScopes {
  return {
    allowed: topicList(metadata, 'allowedTopics'),
    protected: topicList(metadata, 'protectedTopics'),
    publishing: scopedTopics(metadata, 'publishingScopes', appId),
    subscribing: scopedTopics(metadata, 'subscriptionScopes', appId),
  };
}

/**
 * daprd's IsOperationAllowed: a topic outside allowedTopics (when given) is refused; a protected topic, or any topic
 * when the app has scopes of its own, must be among the app's scoped topics.
 */
export function topicAllowed(topic: string, scopes: TopicScopes, scoped: readonly string[]): boolean {
  if (scopes.allowed.length > 0 && !scopes.allowed.includes(topic)) return false;
  const isProtected = scopes.protected.includes(topic);
  if (!isProtected && scoped.length === 0) return true;
  return scoped.includes(topic);
}
