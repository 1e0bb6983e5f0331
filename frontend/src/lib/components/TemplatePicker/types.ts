import type { Schemas } from "../../api/client";

/** A prompt template or style preset as `GET /templates` lists it. */
export type Template = Schemas["StoredTemplate"];

/** What the TemplatePicker edits: the chosen template's id ("" none) and its variables. */
export interface TemplateChoice {
  id: string;
  variables: Record<string, string>;
}
