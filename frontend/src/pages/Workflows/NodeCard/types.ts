import type { NodeProps } from "@xyflow/svelte";
import type { ComfyFlowNode } from "../GraphEditor/types";

/** Props of a node card: Svelte Flow's node props of a ComfyUI node. */
export type NodeCardProps = NodeProps<ComfyFlowNode>;
