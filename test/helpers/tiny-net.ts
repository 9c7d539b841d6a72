/**
 * A tiny random Keras network and a few calibration PNGs, for tests that
 * quantize a whole model through the CLI or the API in well under a second:
 * conv 3x3 → depthwise 3x3 → AveragePooling2D 2x2 → conv 1x1 → global
 * average pooling → Dense softmax, 12×12×3 input.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { writeTfjs } from '../../lib/formats/tfjs-write.js';
import { analyzeModel } from '../../lib/keras/layers.js';
import { mulberry32, randomWeights } from '../../lib/keras/random.js';
import type { KerasModelConfig } from '../../lib/keras/types.js';

const layer = (cls: string, name: string, config: Record<string, unknown>, input?: string): KerasModelConfig['config']['layers'][number] => ({
  class_name: cls,
  name,
  config: { name, ...config },
  inbound_nodes: input === undefined ? [] : [[[input, 0, 0, {}]]],
});

/** The network's Keras config, with `classes` outputs. */
export function tinyNetConfig(name: string, classes: number): KerasModelConfig {
  return {
    class_name: 'Functional',
    config: {
      name,
      layers: [
        layer('InputLayer', 'in', { batch_input_shape: [null, 12, 12, 3] }),
        layer('Conv2D', 'c1', { filters: 8, kernel_size: [3, 3], padding: 'same', activation: 'relu6' }, 'in'),
        layer('DepthwiseConv2D', 'dw', { kernel_size: [3, 3], padding: 'same', activation: 'relu6' }, 'c1'),
        layer('AveragePooling2D', 'ap', { pool_size: [2, 2], strides: [2, 2] }, 'dw'),
        layer('Conv2D', 'c2', { filters: 8, kernel_size: [1, 1], activation: 'relu' }, 'ap'),
        layer('GlobalAveragePooling2D', 'gap', {}, 'c2'),
        layer('Dense', 'fc', { units: classes, activation: 'softmax' }, 'gap'),
      ],
      input_layers: [['in', 0, 0]],
      output_layers: [['fc', 0, 0]],
    },
  };
}

/** Writes the network as a TF.js layers model (random weights from `seed`) to `modelJson`'s directory. */
export async function writeTinyNet(modelJson: string, config: KerasModelConfig, seed: number): Promise<void> {
  await writeTfjs(path.dirname(modelJson), config, randomWeights(analyzeModel(config), seed));
}

/** `count` random-noise PNGs of `width`×12 in a new directory `dir`. */
export async function writeNoisePngs(dir: string, width: number, seed: number, count = 3): Promise<void> {
  fs.mkdirSync(dir);
  const rnd = mulberry32(seed);
  for (let i = 0; i < count; i++) {
    const px = Buffer.from(Array.from({ length: width * 12 * 3 }, () => Math.floor(rnd() * 256)));
    await sharp(px, { raw: { width, height: 12, channels: 3 } }).png().toFile(path.join(dir, `${i}.png`));
  }
}
