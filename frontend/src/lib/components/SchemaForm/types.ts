/** Props of {@link SchemaForm}. */
import type { JsonSchema } from "../../core/schema-form";

export type { FieldDescriptor, JsonSchema } from "../../core/schema-form";

export interface SchemaFormProps {
  /** The object schema to edit (pydantic `model_json_schema()` output). */
  schema: JsonSchema;
  /** The edited values (bindable); keys the schema does not know are kept untouched. */
  value: Record<string, unknown>;
  /** Errors from elsewhere (a server 422), keyed by field path relative to the form (`delay`). */
  errors?: Record<string, string>;
  /** Prefix of the element ids (unique per form on the page). */
  idPrefix: string;
  /** Show every field's client-side error at once (after a submit), not only touched ones. */
  showAllErrors?: boolean;
  disabled?: boolean;
}
