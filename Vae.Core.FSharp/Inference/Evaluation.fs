namespace Vae.Core

open TorchSharp

/// Evaluation of a model on a data set (no gradients, in batches).
[<RequireQualifiedAccess>]
module Evaluation =

    /// Mean per-datapoint lower bound (estimator B with L = 1, or A) over data [N; D], in batches.
    let bound (kind: EstimatorKind) (m: VaeModel) (data: Tensor) (batch: int) (g: torch.Generator) : float =
        use _ = torch.no_grad ()
        let n = data.shape.[0]
        let mutable total = 0.0
        for start in 0L .. int64 batch .. n - 1L do
            use _ = torch.NewDisposeScope()
            let x = data.narrow(0L, start, min (int64 batch) (n - start))
            let eps = ElboEstimator.noise 1 (int x.shape.[0]) m g
            total <- total + (ElboEstimator.ofKind kind m x eps).sum().ToDouble()
        total / float n

    /// Burda et al.'s (2015, section 5.2) activity of each latent dimension u: the variance over the datapoints of data
    /// [N; D] of the encoder's mean E_q[z_u | x] (dividing by N, as their code's np.var), [J] in float64, in batches. A
    /// unit is active when its activity exceeds 10^-2.
    let latentActivity (m: VaeModel) (data: Tensor) (batch: int) : Tensor =
        use _ = torch.no_grad ()
        let n = data.shape.[0]
        if n < 1L then invalidArg "data" "the activity of latent units needs at least one datapoint"
        let meanOf (start: int64) =
            use _ = torch.NewDisposeScope()
            (VaeModel.encode m (data.narrow(0L, start, min (int64 batch) (n - start)))).Mean.to_type(torch.float64).MoveToOuterDisposeScope()
        let batches = [| for start in 0L .. int64 batch .. n - 1L -> meanOf start |]
        use means = torch.cat(batches, 0L)
        for b in batches do b.Dispose()
        means.var(0L, false)

    /// Samples per chunk of a K-sample estimate on x [B; D]: a chunk's decoder output (chunk x B x D values) stays
    /// near 4 million values (16 MB in float32), below glibc's largest mmap threshold (32 MB), so its tensors are
    /// reused rather than mapped anew, and the elementwise passes stay nearer the cache.
    let chunkFor (k: int) (x: Tensor) : int =
        max 1 (min k (4_000_000 / max 1 (int (x.shape.[0] * x.shape.[1]))))

    /// Mean per-datapoint K-sample importance-weighted estimate of log p(x) over data [N; D]; with mixedPrecision the
    /// decoder's output multiply takes bfloat16 operands (ImportanceWeighted.logJointMixedPrecision; Bernoulli decoders).
    let importanceWeightedIn (mixedPrecision: bool) (m: VaeModel) (data: Tensor) (k: int) (batch: int) (g: torch.Generator) : float =
        use _ = torch.no_grad ()
        let estimate = if mixedPrecision then ImportanceWeighted.boundMixedPrecision else ImportanceWeighted.bound
        let n = data.shape.[0]
        let mutable total = 0.0
        for start in 0L .. int64 batch .. n - 1L do
            use _ = torch.NewDisposeScope()
            let x = data.narrow(0L, start, min (int64 batch) (n - start))
            total <- total + (estimate m x k (chunkFor k x) g).sum().ToDouble()
        total / float n

    /// Mean per-datapoint K-sample importance-weighted estimate of log p(x) over data [N; D], in the model's dtype.
    let importanceWeighted (m: VaeModel) (data: Tensor) (k: int) (batch: int) (g: torch.Generator) : float =
        importanceWeightedIn false m data k batch g
