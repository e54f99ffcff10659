namespace Vae.Core

open System
open TorchSharp

/// Which estimate a learner ascends: an SGVB estimator of the lower bound, or the importance-weighted bound.
type EstimatorKind =
    /// Generic SGVB estimator L^A (eq. 6).
    | A
    /// SGVB estimator L^B with the analytic KL (eq. 7).
    | B
    /// The importance-weighted bound with K = L samples (Burda et al. 2015, eq. 8): log (1/L) sum_l p(x, z_l) / q(z_l|x).
    /// A tighter bound than the ELBO, rising with L towards log p(x); equal to L^A at L = 1.
    | Iwae

/// How the encoder's gradient of the importance-weighted bound is estimated (the decoder's is the same under both).
type EncoderGradient =
    /// The gradient of the estimate itself, through the samples z_l and q's density together (Burda et al.).
    | Reparameterised
    /// The doubly reparameterised estimator (Tucker et al. 2018, eq. 5): sum_l w~_l^2 d log w_l / dz_l dz_l / dphi with
    /// normalised weights w~; the same expectation, with a variance that does not grow as the plain one's does with L.
    | DoublyReparameterised

/// The SGVB estimators of the lower bound (section 2.3) as pure functions of
/// (model, minibatch x [M; D], noise eps [L; M; J]), returning per-datapoint estimates [M].
[<RequireQualifiedAccess>]
module ElboEstimator =

    /// The log importance weights log p(x, z_l) - log q(z_l|x) [L; M], with z_l = mu + sigma * eps_l.
    let logWeights (m: VaeModel) (x: Tensor) (eps: Tensor) : Tensor =
        let q = VaeModel.encode m x
        let z = Distributions.reparameterise q eps
        VaeModel.logJoint m x z - Distributions.gaussianLogDensityOfNoise q eps

    /// L^A (eq. 6): (1/L) sum_l log p(x, z_l) - log q(z_l|x), with z_l = mu + sigma * eps_l.
    let A (m: VaeModel) (x: Tensor) (eps: Tensor) : Tensor =
        (logWeights m x eps).mean([| 0L |])

    /// L^B (eq. 7): -KL(q(z|x) || p(z)) + (1/L) sum_l log p(x|z_l).
    let B (m: VaeModel) (x: Tensor) (eps: Tensor) : Tensor =
        let q = VaeModel.encode m x
        let z = Distributions.reparameterise q eps
        (VaeModel.logLikelihood m z x).mean([| 0L |]) - Distributions.klToStandardNormal q

    /// The importance-weighted bound (Burda et al. eq. 8): log (1/L) sum_l p(x, z_l) / q(z_l|x), the log-mean-exp of
    /// L^A's terms. Its value is libtorch's logsumexp bit for bit; its gradient is sum_l w~_l d log w_l with the
    /// normalised weights w~ = softmax(log w) themselves. (logsumexp differentiates to exp(log w - lse), which stops
    /// summing to 1 in float32 once |log w| is so large that log L is below its rounding: L times the gradient.)
    let Iwae (m: VaeModel) (x: Tensor) (eps: Tensor) : Tensor =
        let logW = logWeights m x eps
        let held = logW.detach()
        // Weights of datapoints whose weights are all 0 (log w = -inf everywhere) are NaN: they take no gradient.
        let normalised = torch.softmax(held, 0).nan_to_num(0.0)
        let value = held.logsumexp(0L).sub(Torch.constant (Math.Log(double eps.shape.[0])))
        // log w - held is 0, except where log w is infinite (NaN): zero there too, so that the value stays logsumexp's.
        let zero = logW - held
        value + (normalised * torch.where(held.isfinite(), zero, torch.zeros_like(zero))).sum(0L)

    /// The estimator of the given kind.
    let ofKind (kind: EstimatorKind) = match kind with A -> A | B -> B | Iwae -> Iwae

    /// The doubly reparameterised surrogate of the importance-weighted bound (Tucker et al. 2018): per datapoint
    /// sum_l w~_l^2 log w_l with the normalised weights w~ held constant and q's density taken at its parameters held
    /// constant, so that its gradient in the encoder's parameters flows through z_l alone and equals eq. 5's estimator.
    /// Its gradient in the decoder's parameters is not the bound's: take those from Iwae.
    let iwaeEncoderSurrogate (m: VaeModel) (x: Tensor) (eps: Tensor) : Tensor =
        let q = VaeModel.encode m x
        let z = Distributions.reparameterise q eps
        let held : Distributions.DiagonalGaussian = { Mean = q.Mean.detach(); LogVar = q.LogVar.detach() }
        let logW = VaeModel.logJoint m x z - Distributions.gaussianLogDensity held z
        let normalised = torch.softmax(logW.detach(), 0)
        (normalised * normalised * logW).sum(0L)

    /// The minibatch estimator (eq. 8) of the full-data bound: (N / M) times the sum of the M per-datapoint estimates.
    let minibatch (n: int) (perDatapoint: Tensor) : Tensor =
        perDatapoint.sum().mul(Torch.constant (float n / float perDatapoint.shape.[0]))

    /// Standard normal noise [L; M; J] for M datapoints.
    let noise (samples: int) (batch: int) (m: VaeModel) (g: torch.Generator) : Tensor =
        torch.randn([| int64 samples; int64 batch; int64 m.Config.LatentDim |], dtype = m.Config.DType, generator = g)
