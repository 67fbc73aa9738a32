/**
 * Learning-rate schedule: cosine annealing from `lr` to 0 over the epochs (PyTorch's
 * CosineAnnealingLR stepped once per epoch, eta_min 0, as the official code), with an optional
 * linear warm-up over the first `warmupEpochs` epochs.
 */
export function cosineLr(epoch: number, epochs: number, lr: number, warmupEpochs = 0): number {
  if (epoch < warmupEpochs) return (lr * (epoch + 1)) / (warmupEpochs + 1);
  const t = epoch - warmupEpochs;
  const T = Math.max(1, epochs - warmupEpochs);
  return 0.5 * lr * (1 + Math.cos((Math.PI * t) / T));
}
