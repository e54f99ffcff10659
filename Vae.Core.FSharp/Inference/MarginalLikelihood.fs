namespace Vae.Core

open System
open TorchSharp

/// Settings of the marginal-likelihood estimator of Appendix D.
type MarginalLikelihoodConfig =
    { /// Posterior samples per datapoint, after burn-in (the paper: 50); the first half fits the
      /// density estimate, the second half enters the estimate.
      PosteriorSamples: int
      /// HMC transitions before sampling, with step-size adaptation.
      BurnIn: int
      /// HMC transitions between kept samples.
      Thinning: int
      /// The HMC sampler (the paper: 4 leapfrog steps).
      Hmc: HmcConfig
      /// Multiples of Scott's factor tried as the kernel bandwidth; the one with the best
      /// leave-one-out score on the fitting half is used.
      BandwidthMultiples: float list
      /// The initial HMC step size.
      InitialStepSize: float
      /// Adapt one step size per chain (Hmc.adaptPerChain) instead of one shared step size tuned on the
      /// batch's acceptance rate (the paper's code).
      PerChainStepSizes: bool
      /// A chain has not mixed when the mean log density estimate of its second half differs from that of its own
      /// first half (leave-one-out) by more than this many nats; its datapoint is then estimated again.
      MixingTolerance: float
      /// A chain has also not mixed when the means of its two halves differ by more than this, as (n/2) d^T S^-1 d
      /// for n samples per half and the first half's covariance S (about chi-squared with J degrees of freedom
      /// for independent halves): a chain drifting through both halves.
      MixingShift: float
      /// How many times a datapoint whose chain has not mixed is estimated again, continuing its chain.
      Retries: int
      /// Chains start at the best, by log p(x, z), of this many draws from q(z|x) and as many from the prior
      /// (MarginalLikelihood.startingPoints); 0: at one draw from the prior, as the paper's code starts them.
      StartCandidates: int
      /// A chain that did not move through one half of its samples (every proposal rejected, as a step size shared by
      /// the batch's chains leaves a chain with a narrow posterior) counts as not mixed and is estimated again; its
      /// kernels would otherwise be spikes and its estimate far too low. False: as records made before 2026-12-07.
      RetryStuckChains: bool }

/// Estimators of the marginal likelihood log p(x).
[<RequireQualifiedAccess>]
module MarginalLikelihood =

    /// The paper's Figure 3 settings: 50 posterior samples, HMC with 4 leapfrog steps. The paper gives no
    /// burn-in; 1000 transitions (with 100 from the encoder's q(z|x), stuck chains made the density estimate a
    /// spike and the estimate absurd on a Monte Carlo EM model). Chains start at the best of 500 draws from q(z|x)
    /// and 500 from the prior, not at one draw from the prior as in the paper's code (its directed models' gen_xz):
    /// from a single draw, 1000 transitions did not reach the posterior of a Monte Carlo EM model (RESULTS.md).
    let paper =
        { PosteriorSamples = 50; BurnIn = 1000; Thinning = 1; Hmc = { Hmc.paper with LeapfrogSteps = 4 }
          BandwidthMultiples = [ 0.25; 0.5; 0.75; 1.0; 1.5; 2.0 ]; InitialStepSize = 0.1; PerChainStepSizes = false
          MixingTolerance = 2.0; MixingShift = 20.0; Retries = 3; StartCandidates = 500; RetryStuckChains = true }

    /// Scott's factor n^(-1/(d+4)) for n samples in d dimensions.
    let scottFactor (n: int) (d: int) = Math.Pow(float n, -1.0 / float (d + 4))

    /// Log-density of a Gaussian kernel density estimate: for each of B batches, kernels N(., s_i, H)
    /// at the samples s [B; n; J] with H = h^2 Cov(s) (h [B]), evaluated at points [B; m; J] -> [B; m].
    /// With leaveOneOut (points = samples), each point's own kernel is left out.
    let kdeLogDensity (samples: Tensor) (h: Tensor) (points: Tensor) (leaveOneOut: bool) : Tensor =
        // In float64: a chain that barely moved has a nearly singular covariance, beyond float32's reach.
        let samples, h, points = samples.to_type(torch.float64), h.to_type(torch.float64), points.to_type(torch.float64)
        let n, d = samples.shape.[1], samples.shape.[2]
        let centred = samples - samples.mean([| 1L |], keepdim = true)
        let cov = Torch.overNumber (centred.transpose(1L, 2L).matmul(centred)) (float (n - 1L))
        // A small ridge keeps the covariance invertible when a chain has stuck (rejections repeat samples):
        // 1e-6 of its mean variance, and at least 1e-8.
        let ridge = torch.eye(d, dtype = samples.dtype) * (Torch.timesNumber (cov.diagonal(0L, 1L, 2L).mean([| -1L |])) 1e-6).clamp_min(Torch.constant 1e-8).view([| -1L; 1L; 1L |])
        let bandwidth = cov.add(ridge, Torch.one) * (h * h).view([| -1L; 1L; 1L |])
        let chol = torch.linalg.cholesky(bandwidth)                                  // [B; J; J]
        let diff = points.unsqueeze(2L) - samples.unsqueeze(1L)                       // [B; m; n; J]
        let b, m = diff.shape.[0], diff.shape.[1]
        let rhs = diff.reshape([| b; m * n; d |]).transpose(1L, 2L).unsqueeze(1L)       // [B; 1; J; m n]
        let solved = torch.linalg.solve_triangular(chol.unsqueeze(1L), rhs, upper = false)
        let maha = (solved * solved).sum(2L).view([| b; m; n |])                       // [B; m; n]
        let logDet = Torch.timesNumber (chol.diagonal(0L, 1L, 2L).log().sum(-1L)) 2.0  // [B]
        let logKernel = Torch.timesNumber ((Torch.plusNumber maha (Math.Log(2.0 * Math.PI) * float d)).add(logDet.view([| -1L; 1L; 1L |]), Torch.one)) -0.5
        let logKernel, count =
            if leaveOneOut then logKernel - Torch.timesNumber (torch.eye(n, dtype = samples.dtype).unsqueeze(0L)) 1e30, n - 1L
            else logKernel, n
        Torch.plusNumber (logKernel.logsumexp(2L)) (-(Math.Log(float count)))

    /// Draws posterior samples by HMC, one chain per datapoint: logJoint maps z [B; J] to log p(x_b, z_b) [B].
    /// Returns the samples [B; S; J] and their log p(x, z) values [B; S].
    let posteriorSamples (c: MarginalLikelihoodConfig) (logJoint: Tensor -> Tensor) (init: Tensor) (g: torch.Generator) : Tensor * Tensor =
        // Burn-in with step-size adaptation: one shared step size tuned on the batch's acceptance rate
        // (the paper's code), or one per chain; the per-chain sizes jitter from transition to transition,
        // so sampling uses their geometric mean over the second half of the burn-in.
        let mutable z = init
        let mutable eps = Torch.filled [| init.shape.[0]; 1L |] c.InitialStepSize init.dtype
        let mutable shared = c.InitialStepSize
        let mutable logEpsSum = torch.zeros_like(eps)
        let averaged = max 1 (c.BurnIn / 2)
        for i in 1 .. c.BurnIn do
            use _ = torch.NewDisposeScope()
            if i % 100 = 0 then Torch.releaseFinalizedMemory () // the leapfrog gradients' native memory (see there)
            if c.PerChainStepSizes then
                let positions, _, accepted = Hmc.transition c.Hmc logJoint z eps g
                z <- positions.MoveToOuterDisposeScope()
                eps <- (Hmc.adaptPerChain c.Hmc eps accepted).MoveToOuterDisposeScope()
                if i > c.BurnIn - averaged then logEpsSum <- logEpsSum.add(eps.log(), Torch.one).MoveToOuterDisposeScope()
            else
                let s = Hmc.step c.Hmc true logJoint z shared g
                z <- s.Positions.MoveToOuterDisposeScope()
                shared <- s.StepSize
        eps <-
            if c.PerChainStepSizes && c.BurnIn > 0 then (Torch.overNumber logEpsSum (float (min averaged c.BurnIn))).exp()
            elif c.PerChainStepSizes then eps
            else Torch.filled [| init.shape.[0]; 1L |] shared init.dtype
        let samples = ResizeArray()
        let values = ResizeArray()
        for _ in 1 .. c.PosteriorSamples do
            let mutable last = Unchecked.defaultof<Tensor>
            for _ in 1 .. c.Thinning do
                let positions, logP, _ = Hmc.transition c.Hmc logJoint z eps g
                z <- positions
                last <- logP
            samples.Add z
            values.Add last
        torch.stack(samples, 1L), torch.stack(values, 1L)

    /// One pass of Appendix D's estimate for B datapoints: HMC posterior samples from init; a Gaussian kernel
    /// density estimate q fitted to the first half of each chain (bandwidth: the multiple of Scott's factor with
    /// the best leave-one-out score); log p(x) = -log mean_l q(z_l) / p(x, z_l) over the second half, in log space.
    /// Returns the estimates [B], which chains have not mixed [B] (bool: the mean leave-one-out log q of the first
    /// half and the mean log q of the second half differ by more than MixingTolerance nats, or the halves' means by
    /// more than MixingShift, or the chain did not move through one of its halves) and the chains' last positions [B; J].
    let estimateOnce (c: MarginalLikelihoodConfig) (logJoint: Tensor -> Tensor) (init: Tensor) (g: torch.Generator) : Tensor * Tensor * Tensor =
        if c.PosteriorSamples < 4 then invalidArg (nameof c) "Appendix D needs at least 4 posterior samples"
        use _ = torch.no_grad ()
        let z, logPxz = posteriorSamples c logJoint init g
        let half = int64 (c.PosteriorSamples / 2)
        let fit, estimateZ = z.narrow(1L, 0L, half), z.narrow(1L, half, z.shape.[1] - half)
        let estimateLogPxz = logPxz.narrow(1L, half, z.shape.[1] - half)
        let scott = scottFactor (int half) (int z.shape.[2])
        let b = z.shape.[0]
        // Leave-one-out score of each multiple, per datapoint; the best multiple per datapoint.
        let scores =
            c.BandwidthMultiples
            |> List.map (fun k -> kdeLogDensity fit (Torch.filled [| b |] (k * scott) z.dtype) fit true |> fun s -> s.mean([| 1L |]))
        let stacked = torch.stack(scores, 1L)
        let best = stacked.argmax(1L)
        let multiples = torch.tensor(List.toArray c.BandwidthMultiples, dtype = z.dtype).index_select(0L, best)
        let logQ = kdeLogDensity fit (Torch.timesNumber multiples scott) estimateZ false
        // Mixing checks. A gap either way is a failure: a second half away from the first (positive), or a first
        // half still in transit, whose sparse points have a low leave-one-out density (negative).
        let gap = stacked.gather(1L, best.unsqueeze(1L)).squeeze(1L) - logQ.mean([| 1L |])
        let fit64, est64 = fit.to_type(torch.float64), estimateZ.to_type(torch.float64)
        let centred = fit64 - fit64.mean([| 1L |], keepdim = true)
        let d = z.shape.[2]
        let cov = (Torch.overNumber (centred.transpose(1L, 2L).matmul(centred)) (float (half - 1L))).add(Torch.timesNumber (torch.eye(d, dtype = torch.float64)) 1e-12, Torch.one)
        let shift = est64.mean([| 1L |]) - fit64.mean([| 1L |])                                    // [B; J]
        let shiftStat = Torch.timesNumber ((shift * torch.linalg.solve(cov, shift.unsqueeze(-1L)).squeeze(-1L)).sum(-1L)) (float half / 2.0)
        // A chain that stayed at one point through either half (every proposal rejected) has no spread to fit a density
        // to: the ridge makes its kernels spikes, the estimate far too low, and both checks below read it as mixed.
        let still (s: Tensor) = (s.amax([| 1L |]) - s.amin([| 1L |])).eq(Torch.constant 0.0).all(-1L)
        let unmixed = gap.abs().gt(Torch.constant c.MixingTolerance).logical_or(shiftStat.gt(Torch.constant c.MixingShift))
        let unmixed = if c.RetryStuckChains then unmixed.logical_or(still fit).logical_or(still estimateZ) else unmixed
        let logRatio = logQ - estimateLogPxz.to_type(torch.float64)
        (Torch.plusNumber (logRatio.logsumexp(1L)) (-(Math.Log(float logRatio.shape.[1])))).neg().to_type(z.dtype), unmixed, z.select(1L, -1L)

    /// Appendix D's estimate of log p(x) for B datapoints (see estimateOnce), robust to chains that have not
    /// mixed: a chain whose second half lies where the density fitted to its first half is small makes the
    /// harmonic-mean estimate overshoot, by nats or by orders of magnitude. Such datapoints (see estimateOnce's mixing checks) are estimated again, continuing
    /// their chains after a burn-in of 100 adaptive transitions, with the thinning doubled on each retry,
    /// up to Retries times. logJointOf rows gives the log joint of the datapoints at those row indices: z [R; J] -> [R].
    /// Returns the estimates [B] and which chains still had not mixed [B] (bool).
    let estimateMixed (c: MarginalLikelihoodConfig) (logJointOf: Tensor -> (Tensor -> Tensor)) (init: Tensor) (g: torch.Generator) : Tensor * Tensor =
        use _ = torch.no_grad ()
        let all = torch.arange(init.shape.[0], dtype = torch.int64)
        let est, unmixed, last = estimateOnce c (logJointOf all) init g
        let mutable est, unmixed, last = est, unmixed, last
        let mutable tries = 0
        while tries < c.Retries && unmixed.any().ToBoolean() do
            let rows = unmixed.nonzero().squeeze(1L)
            // Sample differently, not just again: the chains continue from where they are (in or near the
            // posterior) with a short adaptive burn-in, and twice the thinning on each retry.
            let retry = { c with BurnIn = 100; Thinning = c.Thinning * (2 <<< tries) }
            let e, u, l = estimateOnce retry (logJointOf rows) (last.index_select(0L, rows)) g
            est <- est.index_copy(0L, rows, e)
            unmixed <- unmixed.index_copy(0L, rows, u)
            last <- last.index_copy(0L, rows, l)
            tries <- tries + 1
        est, unmixed

    /// Appendix D's estimate of log p(x) for B datapoints whose log joint is logJoint (z [B; J] -> [B]), without
    /// the retries of estimateMixed (one pass). Returns [B].
    let estimate (c: MarginalLikelihoodConfig) (logJoint: Tensor -> Tensor) (init: Tensor) (g: torch.Generator) : Tensor =
        let est, _, _ = estimateOnce c logJoint init g
        est

    /// Starting points for B chains: per datapoint, the draw with the highest log p(x, z) among `candidates` draws from
    /// q (mean and log-variance [B; J]) and `candidates` from the prior N(0, I). logJoint maps z [S; B; J] to [S; B].
    /// The paper's code starts at one draw from the prior; from a single draw (of q or of the prior), 1000 burn-in
    /// transitions did not reach the posterior of a Monte Carlo EM model, and the estimate was far too low (RESULTS.md).
    let startingPoints (logJoint: Tensor -> Tensor) (q: Distributions.DiagonalGaussian) (candidates: int) (g: torch.Generator) : Tensor =
        use _ = torch.no_grad ()
        let b, j = q.Mean.shape.[0], q.Mean.shape.[1]
        let block = 100L
        let mutable best = q.Mean
        let mutable bestScore = (logJoint (q.Mean.unsqueeze(0L))).squeeze(0L)
        for fromPrior in [ false; true ] do
            for first in 0L .. block .. int64 candidates - 1L do
                use _ = torch.NewDisposeScope()
                let count = min block (int64 candidates - first)
                let eps = torch.randn([| count; b; j |], dtype = q.Mean.dtype, generator = g)
                let z = if fromPrior then eps else Distributions.reparameterise q eps
                let scores = logJoint z
                let struct (top, index) = scores.max(0L)
                let better = top.gt(bestScore)
                let picked = z.permute(1L, 0L, 2L).gather(1L, index.view(b, 1L, 1L).expand(b, 1L, j)).squeeze(1L)
                best <- torch.where(better.unsqueeze(-1L), picked, best).MoveToOuterDisposeScope()
                bestScore <- torch.where(better, top, bestScore).MoveToOuterDisposeScope()
        best

    /// The mean Appendix D estimate of log p(x) per datapoint of a VAE's generative model over data
    /// [N; D], in batches of up to 100 datapoints. Chains start at startingPoints (c.StartCandidates > 0) or, as in
    /// the paper's code, at one draw from the prior N(0, I).
    let ofModel (c: MarginalLikelihoodConfig) (m: VaeModel) (data: Tensor) (g: torch.Generator) : float =
        let n = data.shape.[0]
        let mutable total = 0.0
        for start in 0L .. 100L .. n - 1L do
            use _ = torch.NewDisposeScope()
            let x = data.narrow(0L, start, min 100L (n - start))
            let q = VaeModel.encode m x
            let init =
                if c.StartCandidates > 0 then startingPoints (VaeModel.logJoint m x) q c.StartCandidates g
                else torch.randn(q.Mean.shape, dtype = m.Config.DType, generator = g)
            let logJointOf (rows: Tensor) = VaeModel.logJoint m (x.index_select(0L, rows))
            let est, _ = estimateMixed c logJointOf init g
            total <- total + est.sum().ToDouble()
        total / float n
