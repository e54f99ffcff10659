namespace Vae.Core

open System
open TorchSharp

/// Log-densities over the last dimension of a tensor (summed over it), the reparameterised
/// Gaussian sample (section 2.4) and the analytic KL (Appendix B).
[<RequireQualifiedAccess>]
module Distributions =

    // Cached Scalars (Torch.constant), and add's alpha given explicitly: an implicit Scalar made for one call (TorchSharp's
    // add(Scalar) makes its alpha so) is left to the finalizer, which can free it while libtorch still reads it (a GC
    // during the call; seen as "Expected false to be true" from Scalar::toFloat).
    let private log2Pi = Torch.constant (Math.Log(2.0 * Math.PI))
    let private minusHalf = Torch.constant -0.5
    let private one = Torch.one
    let private half = Torch.constant 0.5

    /// A diagonal Gaussian N(mean, diag exp(logVar)), parameterised by its log-variance.
    type DiagonalGaussian = { Mean: Tensor; LogVar: Tensor }

    /// z = mean + exp(logVar / 2) * eps with eps ~ N(0, I): the reparameterisation g_phi(eps, x).
    let reparameterise (q: DiagonalGaussian) (eps: Tensor) : Tensor =
        q.Mean.add((q.LogVar * half).exp() * eps, one)

    /// log N(x; mean, diag exp(logVar)), summed over the last dimension.
    let gaussianLogDensity (q: DiagonalGaussian) (x: Tensor) : Tensor =
        let d = x - q.Mean
        q.LogVar.add(d * d * (-q.LogVar).exp(), one).add(log2Pi, one).sum(-1L) * minusHalf

    /// log q(z|x) for z = reparameterise q eps, written with eps directly (fewer operations, same value).
    let gaussianLogDensityOfNoise (q: DiagonalGaussian) (eps: Tensor) : Tensor =
        q.LogVar.add(eps * eps, one).add(log2Pi, one).sum(-1L) * minusHalf

    /// log N(z; 0, I), summed over the last dimension: the prior p(z).
    let standardNormalLogDensity (z: Tensor) : Tensor =
        (z * z).add(log2Pi, one).sum(-1L) * minusHalf

    /// softplus(l) = log(1 + e^l) = max(l, 0) + log1p(e^-|l|): exact for every l (libtorch's
    /// softplus returns l itself above a threshold of 20, off by up to 2e-9).
    let softplus (l: Tensor) : Tensor = l.clamp_min(Torch.constant 0.0).add((-l.abs()).exp().log1p(), one)

    /// log Bernoulli(x; sigmoid(logits)) = x l - softplus(l), summed over the last dimension.
    /// Exact for logits of any size (never forms sigmoid(l), so never log 0).
    let bernoulliLogProbability (logits: Tensor) (x: Tensor) : Tensor =
        (x * logits - softplus logits).sum(-1L)

    /// KL(N(mean, diag exp(logVar)) || N(0, I)) = -1/2 sum(1 + logVar - mean^2 - exp(logVar)) (Appendix B).
    let klToStandardNormal (q: DiagonalGaussian) : Tensor =
        (q.LogVar.add(one, one) - q.Mean * q.Mean - q.LogVar.exp()).sum(-1L) * minusHalf
