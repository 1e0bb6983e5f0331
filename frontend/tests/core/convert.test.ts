import { describe, expect, it } from "vitest";
import ui from "../fixtures/comfyui/ui_txt2img.json";
import api from "../fixtures/comfyui/api_txt2img.json";
import subset from "../fixtures/comfyui/object_info_subset.json";
import more from "../fixtures/comfyui_recorded/object_info_more.json";
import {
  apiToGraph,
  executionOrder,
  graphToApi,
  isApiPrompt,
  isUiWorkflow,
  LAYOUT,
  newNode,
  nextNodeId,
  uiToApi,
  uiToGraph,
  WorkflowFormatError,
  type UiWorkflow,
} from "../../src/lib/core/convert";
import type { ObjectInfo } from "../../src/lib/core/objectInfo";

const info = { ...subset, ...more } as unknown as ObjectInfo;
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

describe("uiToApi", () => {
  it("converts the recorded default graph exactly as ComfyUI did", () => {
    const out = uiToApi(ui, info);
    expect(out).toEqual(api);
    // execution order as the frontend's graphToPrompt (the recording's key order)
    expect(Object.keys(out)).toEqual(Object.keys(api));
  });

  it("skips control_after_generate, and fills a missing widget with its default", () => {
    const out = uiToApi(ui, info);
    expect(out["3"].inputs.steps).toBe(20); // after seed's "randomize" value
    expect(out["9"].inputs.filename_prefix).toBe("ComfyUI");
  });

  it("leaves muted nodes out and wires consumers through bypassed nodes", () => {
    const graph = {
      nodes: [
        { id: 1, type: "EmptyImage", mode: 0, outputs: [{ name: "IMAGE", type: "IMAGE", links: [1] }], widgets_values: [64, 64, 1, 0] },
        { id: 2, type: "ImageInvert", mode: 4, inputs: [{ name: "image", type: "IMAGE", link: 1 }], outputs: [{ name: "IMAGE", type: "IMAGE", links: [2] }] },
        { id: 3, type: "SaveImage", mode: 0, inputs: [{ name: "images", type: "IMAGE", link: 2 }], widgets_values: ["x"] },
        { id: 4, type: "PreviewImage", mode: 2, inputs: [{ name: "images", type: "IMAGE", link: 3 }] },
        { id: 5, type: "Note", mode: 0, widgets_values: ["a note"] },
      ],
      links: [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"], [3, 1, 0, 4, 0, "IMAGE"]],
    };
    const out = uiToApi(graph, info);
    expect(Object.keys(out).sort()).toEqual(["1", "3"]);
    expect(out["3"].inputs.images).toEqual(["1", 0]);
  });

  it("follows Reroute, inlines PrimitiveNode values and converted widgets", () => {
    const graph = {
      nodes: [
        { id: 1, type: "EmptyImage", outputs: [{ name: "IMAGE", type: "IMAGE", links: [1] }], inputs: [{ name: "width", type: "INT", link: 4, widget: { name: "width" } }], widgets_values: [64, 64, 1, 0] },
        { id: 2, type: "Reroute", inputs: [{ name: "", type: "*", link: 1 }], outputs: [{ name: "", type: "IMAGE", links: [2] }] },
        { id: 3, type: "SaveImage", inputs: [{ name: "images", type: "IMAGE", link: 2 }], widgets_values: ["p"] },
        { id: 4, type: "PrimitiveNode", outputs: [{ name: "INT", type: "INT", links: [4] }], widgets_values: [320, "fixed"] },
      ],
      links: [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"], [4, 4, 0, 1, 0, "INT"]],
    };
    const out = uiToApi(graph, info);
    expect(out["3"].inputs.images).toEqual(["1", 0]);
    expect(out["1"].inputs.width).toBe(320);
    expect(out["2"]).toBeUndefined();
  });

  it("refuses unknown node types and non-workflows", () => {
    const bad = clone(ui) as unknown as UiWorkflow;
    bad.nodes[0].type = "NoSuchNode";
    expect(() => uiToApi(bad, info)).toThrow(WorkflowFormatError);
    try {
      uiToApi(bad, info);
    } catch (e) {
      expect((e as WorkflowFormatError).field).toBe("workflow.nodes.7.type");
    }
    expect(() => uiToApi({ foo: 1 }, info)).toThrow(/not a UI-format/);
  });

  it("orders nodes by links, ties by the saved order", () => {
    const order = executionOrder(
      (ui as unknown as UiWorkflow).nodes,
      new Map((ui as unknown as UiWorkflow).links.map((l) => { const a = l as unknown as [number, number, number, number, number, string]; return [a[0], [String(a[1]), a[2], String(a[3]), a[4], a[5]]] as const; })),
    );
    expect(order.map((n) => String(n.id))).toEqual(["4", "5", "6", "7", "3", "8", "9"]);
  });
});

describe("format detection", () => {
  it("tells UI format from API format", () => {
    expect(isUiWorkflow(ui)).toBe(true);
    expect(isApiPrompt(ui)).toBe(false);
    expect(isApiPrompt(api)).toBe(true);
    expect(isUiWorkflow(api)).toBe(false);
    expect(isApiPrompt({})).toBe(false);
  });
});

describe("editor graph", () => {
  it("round-trips API format and lays nodes out by depth", () => {
    const graph = apiToGraph(api, info);
    expect(graph.nodes).toHaveLength(7);
    expect(graph.links).toHaveLength(9);
    const x = (id: string) => graph.nodes.find((n) => n.id === id)!.position.x;
    expect(x("4")).toBe(LAYOUT.x0);
    expect(x("5")).toBe(LAYOUT.x0);
    expect(x("6")).toBe(LAYOUT.x0 + LAYOUT.column);
    expect(x("3")).toBe(LAYOUT.x0 + 2 * LAYOUT.column);
    expect(x("9")).toBe(LAYOUT.x0 + 4 * LAYOUT.column);
    expect(graph.links.find((l) => l.to === "3" && l.toInput === "model")!.type).toBe("MODEL");
    expect(graphToApi(graph, info)).toEqual(api);
  });

  it("keeps UI positions and marks linked widgets converted", () => {
    const graph = uiToGraph(ui, info);
    expect(graph.nodes.find((n) => n.id === "4")!.position).toEqual({ x: 26, y: 474 });
    const withLink = apiToGraph({ ...clone(api), "5": { class_type: "EmptyLatentImage", inputs: { width: ["10", 0], height: 512, batch_size: 1 } }, "10": { class_type: "EmptyImage", inputs: { width: 1, height: 1, batch_size: 1, color: 0 } } }, info);
    expect(withLink.nodes.find((n) => n.id === "5")!.converted).toEqual(["width"]);
  });

  it("makes new nodes with defaults and free ids", () => {
    const graph = apiToGraph(api, info);
    expect(nextNodeId(graph)).toBe("10");
    const node = newNode(info, "EmptyImage", "10");
    expect(node.values).toEqual({ width: 512, height: 512, batch_size: 1, color: 0 });
    expect(() => newNode(info, "Nope", "11")).toThrow(WorkflowFormatError);
  });
});
