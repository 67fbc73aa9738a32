/**
 * The names of the kernels the native set adds to tfjs (no tfjs kernel does what they do): models
 * and the optimiser look them up (`tf.getKernel(name, backend)`) and fall back to tfjs ops where
 * the set is not registered.
 */

/**
 * Training-mode batch norm (+ a residual branch) (+ ReLU): x, gamma, beta (, res) -> y, batch
 * mean, biased batch variance; y = relu(bn(x) + res), the tail of a residual block in one pass.
 * With runningMean and runningVar also invstd, scale, shift and the moved running statistics;
 * with the attribute `packed` instead y and one [5, C] tensor (rows mean, variance, invstd,
 * scale, shift), the running statistics moved in place.
 */
export const BATCH_NORM_KERNEL = 'LongtailBatchNorm';
/**
 * Its gradient: dy, x, y, mean, invstd, gamma -> dx, dgamma, dbeta (, dres when `residual`);
 * mean and invstd may come as the packed `stats` instead (with `fromX`: scale and shift too, no y).
 */
export const BATCH_NORM_GRAD_KERNEL = 'LongtailBatchNormGrad';
/** Evaluation-mode batch norm: x, scale, shift (, res) -> x * scale + shift (+ res) (then ReLU). */
export const CHANNEL_AFFINE_KERNEL = 'LongtailChannelAffine';

/**
 * Global average pooling x [b, h, w, c] -> [b, c] with tf.mean's arithmetic over axes 1-2 (each
 * channel's float sum over the pixels in order, divided by h * w: bit-identical) without the
 * transpose tfjs-wasm's Mean makes first.
 */
export const CHANNEL_MEAN_KERNEL = 'LongtailChannelMean';

/**
 * Evaluation-mode convolution + batch norm (+ residual) (+ ReLU) in one call, the batch norm folded
 * into the filter (w * gamma / sqrt(var + eps) per output channel, shift beta - mean * scale):
 * x, filter, gamma, beta, mean, variance (, res) -> y. Attributes: strides, pad (as tf.conv2d's),
 * relu, epsilon. No gradient: layers.ts uses it only when no gradient is being recorded.
 */
export const CONV_BN_KERNEL = 'LongtailConvBn';

/**
 * A chain of CONV_BN_KERNEL steps run one image at a time (the activations between steps stay in
 * cache, and in channel planes between 16-channel layers), bit-identical to the steps called one
 * by one: x, then w<i>, gamma<i>, beta<i>, mean<i>, variance<i> per step -> the last step's output.
 * Attributes: `steps`, 6 numbers per step [input buffer, residual buffer or -1, relu 0/1, stride,
 * pad top, pad left] (buffer 0 is x, buffer i + 1 step i's output); epsilon. No gradient.
 */
export const CONV_BN_PROGRAM_KERNEL = 'LongtailConvBnProgram';

/**
 * One SGD step with momentum and weight decay (PyTorch's rule, as src/optim/sgd.ts):
 * p, g, buf -> p - lr * buf', buf' = momentum * buf + g + weightDecay * p, in one pass with the
 * tfjs ops' float rounding (bit-identical to them). Attributes: lr, momentum, weightDecay.
 * Where it is registered, Sgd runs its flat form instead (sgd.ts's sgdFlatInPlace: every
 * parameter in one call, in place).
 */
export const SGD_KERNEL = 'LongtailSgd';
