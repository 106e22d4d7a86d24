// Types of the validator scripts/build.mjs generates from compose-spec.json (ajv standalone code).
interface SchemaError { instancePath: string; schemaPath: string; keyword: string; params: Record<string, unknown>; message?: string }
declare const validate: { (data: unknown): boolean; errors?: SchemaError[] | null };
export = validate;
