/** The dev tools' net argument: `ref`, `convnext` (the bench nets) or `<registry model>@<size>` (3 channels, 7 classes). */
import type * as tfl from "@tensorflow/tfjs-layers";
import { convnextNet, referenceNet } from "../../lib/bench/nets.ts";
import { createModel } from "../../lib/models/registry.ts";

/** Builds the net a dev tool was given (`seed` makes a registry model's initialisation reproducible). */
export function netByName(net: string, seed?: number): tfl.LayersModel {
  if (net === "ref") return referenceNet();
  if (net === "convnext") return convnextNet();
  const [name, size = "48"] = net.split("@");
  return createModel(name, { inputShape: [Number(size), Number(size), 3], numClasses: 7, seed });
}
