/**
 * `@vladmandic/human`'s emotion model (models/emotion.json: oarriaga/face_classification's mini-Xception,
 * trained by its author on FER2013), run as a TF.js GraphModel on this toolkit's engine.
 *
 * Input it expects (human's src/gear/emotion.ts): a face crop from human's own detector, resized bilinearly to
 * 64×64, RGB -> gray with weights 0.2989/0.5870/0.1140 on 0..1 values, then scaled to -1..1; output: softmax
 * over angry, disgust, fear, happy, sad, surprise, neutral (its order). FER2013 images are already gray face
 * crops, so here each 48×48 image is the crop.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { GraphModel } from "@tensorflow/tfjs-converter";
import { humanModel, loadGraphModelFile } from "../faces/files.ts";
import type { Peer } from "./peers.ts";

/** The model's class order. */
export const HUMAN_EMOTION_LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];

/** human's emotion model as a {@link Peer}. */
export async function humanEmotionPeer(): Promise<Peer> {
  const model: GraphModel = await loadGraphModelFile(humanModel("emotion.json"));
  const size = model.inputs[0]?.shape?.[1] ?? 64;
  return {
    name: "human_emotion",
    title: "@vladmandic/human emotion (mini-Xception)",
    package: "@vladmandic/human@3.3.6, models/emotion.json",
    input: `${size}×${size} gray face crop, bilinear resize, 0..1 then ×2−1 (range −1..1)`,
    labels: HUMAN_EMOTION_LABELS,
    inputSize: size,
    predict(gray: tf.Tensor4D): Promise<Float32Array> {
      const probs = tf.tidy(() => {
        const x = tf.image.resizeBilinear(tf.div(gray, 255) as tf.Tensor4D, [size, size], false);
        return model.execute(tf.mul(tf.sub(x, 0.5), 2)) as tf.Tensor2D;
      });
      return probs.data().then((d) => {
        probs.dispose();
        return d as Float32Array;
      });
    },
    dispose: () => model.dispose(),
  };
}
