/**
 * The editor graph ({@link EditorGraph}) as Svelte Flow nodes and edges, and back. A node's
 * input socket is the handle `in:<input name>`, an output socket `out:<index>`.
 */
import type { Edge, Node } from "@xyflow/svelte";
import { linkId, type EditorGraph } from "../../../lib/core/convert";
import type { ObjectInfo } from "../../../lib/core/objectInfo";
import type { Problem } from "../../../lib/core/validate";

/** What a flow node carries: the ComfyUI class, its title, widget values and converted widgets. */
export interface ComfyNodeData extends Record<string, unknown> {
  classType: string;
  title?: string;
  values: Record<string, unknown>;
  converted: string[];
}

export type ComfyFlowNode = Node<ComfyNodeData, "comfy">;
export type ComfyFlowEdge = Edge<{ type: string }>;

/** The actions and facts node cards read from the editor (Svelte context `graph-editor`). */
export interface EditorContext {
  readonly info: ObjectInfo;
  readonly readonly: boolean;
  /** Problems by node id. */
  readonly problems: Map<string, Problem[]>;
  /** `"<node>/<input>"` -> parameter name, for exposed inputs. */
  readonly exposed: Map<string, string>;
  setValue(nodeId: string, input: string, value: unknown): void;
  setTitle(nodeId: string, title: string): void;
  toggleConverted(nodeId: string, input: string): void;
  toggleExposed(nodeId: string, input: string): void;
  removeNode(nodeId: string): void;
}

export const EDITOR_CONTEXT = "graph-editor";

/** Handle id of an input socket. */
export const inHandle = (input: string): string => `in:${input}`;
/** Handle id of an output socket. */
export const outHandle = (index: number): string => `out:${index}`;

/** Flow nodes and edges of an editor graph. */
export function toFlow(graph: EditorGraph): { nodes: ComfyFlowNode[]; edges: ComfyFlowEdge[] } {
  return {
    nodes: graph.nodes.map((n) => ({
      id: n.id,
      type: "comfy",
      position: { ...n.position },
      data: { classType: n.classType, ...(n.title ? { title: n.title } : {}), values: { ...n.values }, converted: [...n.converted] },
      dragHandle: ".drag-handle",
    })),
    edges: graph.links.map((l) => ({
      id: l.id,
      source: l.from,
      sourceHandle: outHandle(l.fromSlot),
      target: l.to,
      targetHandle: inHandle(l.toInput),
      data: { type: l.type },
      label: l.type,
    })),
  };
}

/** The editor graph of flow nodes and edges (edges with unknown handles are dropped). */
export function fromFlow(nodes: ComfyFlowNode[], edges: ComfyFlowEdge[]): EditorGraph {
  const links: EditorGraph["links"] = [];
  for (const e of edges) {
    const slot = Number((e.sourceHandle ?? "").replace(/^out:/, ""));
    const input = (e.targetHandle ?? "").replace(/^in:/, "");
    if (!Number.isInteger(slot) || !input) continue;
    links.push({ id: linkId(e.source, slot, e.target, input), from: e.source, fromSlot: slot, to: e.target, toInput: input, type: e.data?.type ?? "*" });
  }
  return {
    nodes: nodes.map((n) => ({
      id: n.id,
      classType: n.data.classType,
      ...(n.data.title ? { title: n.data.title } : {}),
      position: { ...n.position },
      values: { ...n.data.values },
      converted: [...n.data.converted],
    })),
    links,
  };
}
