/**
 * What a backbone needs to describe its evaluation-mode network as a graph of plain ops. Defined
 * here, below deploy/, so that models never import the exporter: deploy's GraphBuilder
 * satisfies this interface, and deploy recognises a backbone that can export itself by the
 * `exportGraph` method (deploy/graph.ts `isExportable`). Node names are strings.
 */
import type { BatchNorm, Conv } from './layers.ts';

export interface GraphSink {
  /** conv(x) with batch norm folded in (evaluation mode), optionally then ReLU. */
  convBn(x: string, c: Conv, bn: BatchNorm, relu: boolean): string;
  relu(x: string): string;
  addTensors(a: string, b: string): string;
  /** Zero padding of H and W (NHWC). */
  pad(x: string, p: number): string;
  maxPool(x: string, k: number, s: number): string;
  mean(x: string, axes: number[], keepDims?: boolean): string;
}

/** A backbone's own description of itself into a sink; returns the features node. */
export type DescribeGraph = (g: GraphSink, input: string) => string;
