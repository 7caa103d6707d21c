// Which event types a webhook's `events` entry covers, by the server's rule
// (src/catalog/pattern.rs): a name, or a pattern where `*` stands for any
// run of characters; mlhook's own `mlhook.*` types only for entries that
// begin with `mlhook.` (so `*` alone is every platform event).

/** Whether the entry `entry` covers the event type `name`. */
export function covers(entry, name) {
  if (entry === name) return true;
  if (!entry.includes('*') || (name.startsWith('mlhook.') && !entry.startsWith('mlhook.'))) return false;
  const escaped = entry.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`, 's').test(name);
}

/** Whether any of `events` covers `name`. */
export function listens(events, name) {
  return events.some((entry) => covers(entry, name));
}
