/** Small helpers shared by the in-memory store modules: what a row and a jsonb column give back. */
export const clone = <T>(value: T): T => structuredClone(value);
/** What a jsonb column gives back. */
export const json = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
