/**
 * Type checks of links and validation of a whole API prompt against `/object_info`, giving the
 * problems ComfyUI's own `/prompt` validation would report (unknown class_type, a missing
 * required input, a value not in a COMBO's list, a number out of min/max, a link to a missing
 * node or output index or of the wrong type, no output node), as a list of {@link Problem}.
 */
import { isLink, type ApiPrompt } from "./convert";
import { nodeSpec, type InputDef, type ObjectInfo, type OutputDef } from "./objectInfo";

/** One problem: the node, the input when it is about one, and a readable message. */
export interface Problem {
  node_id: string;
  input?: string;
  message: string;
}

/** True when an output of type `from` may feed an input of type `to` (equal types, `*` on
 * either side, or one of a comma-separated list of types). */
export function typesMatch(from: string, to: string): boolean {
  if (from === "*" || to === "*") return true;
  const a = from.split(","), b = to.split(",");
  return a.some((t) => b.includes(t));
}

/**
 * Why `output` cannot feed `input` (null when it can): a widget input (INT, COMBO, ...) takes a
 * link only when converted to a socket, and the output type must match the input type
 * ({@link typesMatch}).
 */
export function checkLink(output: Pick<OutputDef, "type" | "name">, input: Pick<InputDef, "name" | "type" | "widget">, converted = false): string | null {
  if (input.widget && !converted) {
    return `${input.name} is a ${input.widget} widget: convert it to an input before linking to it`;
  }
  const to = input.widget === "COMBO" ? "COMBO" : input.type;
  if (!typesMatch(output.type, to)) return `cannot connect ${output.type} (${output.name}) to ${input.name}, which takes ${to}`;
  return null;
}

function sameValue(a: unknown, b: unknown): boolean {
  return a === b || (typeof a === "number" && typeof b === "number" && a === b);
}

/**
 * Validate an API prompt against `/object_info`.
 * @returns every problem found (empty when the prompt is fine), in node order.
 */
export function validatePrompt(prompt: ApiPrompt, info: ObjectInfo): Problem[] {
  const problems: Problem[] = [];
  let outputs = 0;
  for (const [id, node] of Object.entries(prompt)) {
    const spec = nodeSpec(info, node.class_type);
    if (!spec) {
      problems.push({ node_id: id, message: `unknown node type '${node.class_type}' (not in this ComfyUI's object_info)` });
      continue;
    }
    if (spec.outputNode) outputs += 1;
    const inputs = node.inputs ?? {};
    for (const def of spec.inputs) {
      const value = inputs[def.name];
      if (value === undefined || value === null) {
        if (def.required) problems.push({ node_id: id, input: def.name, message: `required input '${def.name}' is missing` });
        continue;
      }
      if (isLink(value)) {
        const from = String(value[0]);
        const origin = prompt[from];
        if (!origin) {
          problems.push({ node_id: id, input: def.name, message: `'${def.name}' links to node ${from}, which does not exist` });
          continue;
        }
        const originSpec = nodeSpec(info, origin.class_type);
        if (!originSpec) continue; // reported on that node
        const out = originSpec.outputs[value[1]];
        if (!out) {
          problems.push({ node_id: id, input: def.name, message: `'${def.name}' links to output ${value[1]} of node ${from}, which has ${originSpec.outputs.length} output(s)` });
          continue;
        }
        const why = checkLink(out, def, true);
        if (why) problems.push({ node_id: id, input: def.name, message: why });
        continue;
      }
      if (!def.widget) {
        problems.push({ node_id: id, input: def.name, message: `'${def.name}' takes a link from a ${def.type} output, not a value` });
        continue;
      }
      problems.push(...checkValue(id, def, value));
    }
  }
  if (Object.keys(prompt).length && outputs === 0) {
    problems.push({ node_id: "", message: "the graph has no output node (SaveImage, PreviewImage, ...): ComfyUI would run nothing" });
  }
  if (!Object.keys(prompt).length) problems.push({ node_id: "", message: "the graph is empty" });
  return problems;
}

/** Problems of one widget value: type, min/max, COMBO choices. */
export function checkValue(nodeId: string, def: InputDef, value: unknown): Problem[] {
  const at = { node_id: nodeId, input: def.name };
  switch (def.widget) {
    case "INT":
    case "FLOAT": {
      if (typeof value !== "number" || !Number.isFinite(value)) return [{ ...at, message: `'${def.name}' must be a number` }];
      if (def.widget === "INT" && !Number.isInteger(value)) return [{ ...at, message: `'${def.name}' must be a whole number` }];
      if (def.min !== undefined && value < def.min) return [{ ...at, message: `'${def.name}' is ${value}, below its minimum ${def.min}` }];
      if (def.max !== undefined && value > def.max) return [{ ...at, message: `'${def.name}' is ${value}, above its maximum ${def.max}` }];
      return [];
    }
    case "BOOLEAN":
      return typeof value === "boolean" ? [] : [{ ...at, message: `'${def.name}' must be true or false` }];
    case "STRING":
      return typeof value === "string" ? [] : [{ ...at, message: `'${def.name}' must be text` }];
    case "COMBO": {
      const choices = def.choices ?? [];
      if (choices.some((c) => sameValue(c, value))) return [];
      const shown = choices.length ? choices.slice(0, 5).map(String).join(", ") + (choices.length > 5 ? ", …" : "") : "none are installed";
      return [{ ...at, message: `'${def.name}' is '${String(value)}', not one of its choices (${shown})` }];
    }
    default:
      return [];
  }
}
