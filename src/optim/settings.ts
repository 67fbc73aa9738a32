/**
 * The optimiser's settings, one schema for both stages: stage 1's (train/joint-config.ts) and
 * the stage-2 heads' (classifiers/train-head.ts), which follow stage 1's LR, weight decay, batch
 * size and momentum unless a method sets its own (the official cRT recipe). Each field carries
 * its rule, default and help line.
 */
import { z } from 'zod';

export const SGD_SETTINGS = {
  batchSize: z.number().int().positive().default(128).meta({ description: 'batch size' }),
  lr: z.number().positive().default(0.1).meta({ description: 'initial learning rate, cosine to 0' }),
  weightDecay: z.number().min(0).default(5e-4).meta({ description: 'weight decay', shownDefault: '5e-4' }),
  momentum: z.number().min(0).lt(1).default(0.9).meta({ description: 'SGD momentum' }),
};

/** The defaults of SGD_SETTINGS: a library caller's head without a stage 1 to follow. */
export const SGD_DEFAULTS = z.object(SGD_SETTINGS).parse({});
