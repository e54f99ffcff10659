namespace Vae.Core

open System
open TorchSharp

/// Which SGVB estimator.
type EstimatorKind =
    /// Generic SGVB estimator L^A (eq. 6).
    | A
    /// SGVB estimator L^B with the analytic KL (eq. 7).
    | B

/// The SGVB estimators of the lower bound (section 2.3) as pure functions of
/// (model, minibatch x [M; D], noise eps [L; M; J]), returning per-datapoint estimates [M].
[<RequireQualifiedAccess>]
module ElboEstimator =

    /// L^A (eq. 6): (1/L) sum_l log p(x, z_l) - log q(z_l|x), with z_l = mu + sigma * eps_l.
    let A (m: VaeModel) (x: Tensor) (eps: Tensor) : Tensor =
        let q = VaeModel.encode m x
        let z = Distributions.reparameterise q eps
        let logPxz = VaeModel.logLikelihood m z x + Distributions.standardNormalLogDensity z
        (logPxz - Distributions.gaussianLogDensityOfNoise q eps).mean([| 0L |])

    /// L^B (eq. 7): -KL(q(z|x) || p(z)) + (1/L) sum_l log p(x|z_l).
    let B (m: VaeModel) (x: Tensor) (eps: Tensor) : Tensor =
        let q = VaeModel.encode m x
        let z = Distributions.reparameterise q eps
        (VaeModel.logLikelihood m z x).mean([| 0L |]) - Distributions.klToStandardNormal q

    /// The estimator of the given kind.
    let ofKind (kind: EstimatorKind) = match kind with A -> A | B -> B

    /// The minibatch estimator (eq. 8) of the full-data bound: (N / M) times the sum of the M per-datapoint estimates.
    let minibatch (n: int) (perDatapoint: Tensor) : Tensor =
        perDatapoint.sum() * (float n / float perDatapoint.shape.[0])

    /// Standard normal noise [L; M; J] for M datapoints.
    let noise (samples: int) (batch: int) (m: VaeModel) (g: torch.Generator) : Tensor =
        torch.randn([| int64 samples; int64 batch; int64 m.Config.LatentDim |], dtype = m.Config.DType, generator = g)
