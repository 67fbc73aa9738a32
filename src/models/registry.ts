/** Backbones by name (timm's create_model idea): config names a backbone, never a source file. */
import { ConfigError } from '../errors.ts';
import { createRng } from '../random/rng.ts';
import { checkName } from '../registry.ts';
import { type Backbone, cifarResNet, resnet10 } from './resnet.ts';

type Make = (inputShape: readonly [number, number, number], seed: number) => Backbone;

const smallOnly =
  (name: string, make: Make): Make =>
  (shape, seed) => {
    const [h, w] = shape;
    if (h < 8 || w < 8) throw new ConfigError(`${name} needs images of at least 8x8 pixels, got ${h}x${w}`);
    return make(shape, seed);
  };

export const BACKBONES = {
  resnet8: {
    description: 'CIFAR-style ResNet-8 (3 stages x 1 basic block, widths 16/32/64), 64-d features',
    create: smallOnly('resnet8', (s, seed) => cifarResNet(8, { inputShape: s, rng: createRng(seed, 0xb0b) })),
  },
  resnet20: {
    description: 'CIFAR-style ResNet-20 (3 x 3 blocks), 64-d features',
    create: smallOnly('resnet20', (s, seed) =>
      cifarResNet(20, { inputShape: s, rng: createRng(seed, 0xb0b) }),
    ),
  },
  resnet32: {
    description: 'CIFAR-style ResNet-32 (3 x 5 blocks), 64-d features',
    create: smallOnly('resnet32', (s, seed) =>
      cifarResNet(32, { inputShape: s, rng: createRng(seed, 0xb0b) }),
    ),
  },
  resnet10: {
    description:
      'ImageNet-style ResNet-10 (7x7 stem, 4 stages x 1 block), 512-d features, for images >= 32x32',
    create: (s: readonly [number, number, number], seed: number) => {
      if (s[0] < 32 || s[1] < 32)
        throw new ConfigError(`resnet10 needs images of at least 32x32 pixels, got ${s[0]}x${s[1]}`);
      return resnet10({ inputShape: s, rng: createRng(seed, 0xb0b) });
    },
  },
} as const;

export type BackboneName = keyof typeof BACKBONES;
export const BACKBONE_NAMES = Object.keys(BACKBONES) as BackboneName[];

export function checkBackboneName(name: string): BackboneName {
  return checkName(BACKBONES, 'backbone', name);
}

/** Builds a backbone for images of [height, width, channels]; weights from the seed. */
export function createBackbone(
  name: string,
  inputShape: readonly [number, number, number],
  seed: number,
): Backbone {
  if (!(inputShape[2] >= 1)) throw new ConfigError(`images need at least one channel, got ${inputShape[2]}`);
  return BACKBONES[checkBackboneName(name)].create(inputShape, seed);
}
