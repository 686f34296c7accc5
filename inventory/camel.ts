// inventory.yaml's keys are snake_case (as written); the loaded Inventory's are camelCase. The
// loaded shapes are the schema's output with every key renamed (types.ts), and camelKeys does the
// same renaming to the parsed values, so a setting added to the schema reaches the Inventory as is.

/** "connect_timeout" -> "connectTimeout". */
type Camel<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<Camel<Tail>>}` : S;

/** T with every object key renamed by Camel, at every depth (lists included). */
export type CamelKeys<T> = T extends readonly (infer U)[]
  ? CamelKeys<U>[]
  : T extends object
    ? { [K in keyof T as K extends string ? Camel<K> : K]: CamelKeys<T[K]> }
    : T;

const camel = (key: string) => key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** A copy of a parsed value with every key renamed by Camel; keys whose value is undefined are left out. */
export function camelKeys<T>(value: T): CamelKeys<T> {
  if (Array.isArray(value)) return value.map((v: unknown) => camelKeys(v)) as CamelKeys<T>;
  if (value === null || typeof value !== 'object') return value as CamelKeys<T>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[camel(k)] = camelKeys(v);
  return out as CamelKeys<T>;
}
