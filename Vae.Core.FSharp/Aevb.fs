namespace Vae.Core

open System
open TorchSharp

/// Settings of AEVB (Algorithm 1); Aevb.paper gives the paper's.
/// How a run's steps compute their gradient. Auto: the hand-derived step (FusedAevb) wherever it covers the
/// configuration, else autograd; Autograd: always the algorithm's autograd step; HandDerived: the hand-derived step,
/// refused where it does not cover the configuration. The trajectories agree to rounding (property-tested in float64).
type GradientChoice =
    | Auto
    | Autograd
    | HandDerived

type AevbConfig =
    { Estimator: EstimatorKind
      /// Samples L of eps per datapoint (the paper: 1).
      Samples: int
      /// Minibatch size M (the paper: 100).
      BatchSize: int
      Optimizer: AdagradConfig
      /// Add the N(0, I) prior on weights (not biases), its gradient scaled by M/N (the paper's code).
      WeightPrior: bool
      /// Binarise each minibatch by sampling x ~ Bernoulli(grey level) (modern practice; the paper: off).
      Binarize: bool
      /// Matrix multiplies in bfloat16 (float32 master weights, gradients and Adagrad state); only the fused
      /// step (FusedAevb) has it. Off: float32 throughout, as the paper.
      MixedPrecision: bool
      /// Which gradient the steps use (Auto by default).
      Gradient: GradientChoice }

/// Persistent Markov chains of Monte Carlo EM: one latent point per training datapoint, and the
/// HMC step size being tuned.
type McmcState = { Chains: Tensor; StepSize: float }

/// The state a learner (AEVB, wake-sleep, Monte Carlo EM) carries from step to step: the model,
/// Adagrad's accumulators over all its parameters, and MCEM's chains (the generator is carried beside it).
type TrainerState = { Model: VaeModel; Optimizer: AdagradState; Mcmc: McmcState option }

/// Training stopped because the bound or a gradient was not finite; the parameters are those before the step.
type NonFiniteBoundException(step: int64, value: float) =
    inherit ArithmeticException(
        sprintf "training stopped at step %d: the lower bound or its gradient is not finite (bound %g); the parameters of the last good step are kept" step value)
    /// The 0-based step whose estimate was not finite.
    member _.Step = step
    /// The bound's value at that step.
    member _.Value = value

/// Auto-Encoding Variational Bayes (Algorithm 1).
[<RequireQualifiedAccess>]
module Aevb =

    /// The paper's settings: estimator B, L = 1, M = 100, Adagrad with the given step size, weight prior, grey levels.
    let paper (stepSize: float) =
        { Estimator = B; Samples = 1; BatchSize = 100; Optimizer = Adagrad.paper stepSize; WeightPrior = true; Binarize = false; MixedPrecision = false; Gradient = Auto }

    /// A fresh state: the model's parameters record gradients; Adagrad accumulators are zero.
    let init (model: VaeModel) : TrainerState =
        let model = VaeModel.requireGrad true model
        { Model = model; Optimizer = Adagrad.init (VaeModel.tensors model); Mcmc = None }

    /// Draws a minibatch of M datapoints by random indices (with replacement, as the paper's code),
    /// binarised when asked.
    let minibatch (c: AevbConfig) (data: Tensor) (g: torch.Generator) : Tensor =
        let idx = torch.randint(0L, data.shape.[0], [| int64 c.BatchSize |], dtype = torch.int64, generator = g)
        let x = data.index_select(0L, idx)
        if c.Binarize then torch.bernoulli(x, generator = g) else x

    /// objective + (M/N) log p(theta) over the weights of ps when the weight prior is on (the paper's
    /// code scales the N(0, I) prior's gradient by M/N; shared by AEVB, wake-sleep and MCEM).
    let withWeightPrior (c: AevbConfig) (n: int64) (ps: NamedParameter list) (objective: Tensor) : Tensor =
        if c.WeightPrior then objective + VaeModel.logPriorOf ps * (float c.BatchSize / float n) else objective

    /// The objective AEVB ascends for minibatch x and noise eps: the sum of per-datapoint estimates
    /// plus (M/N) log p(theta) when the weight prior is on. Returns (objective, per-datapoint estimates).
    let objective (c: AevbConfig) (n: int64) (m: VaeModel) (x: Tensor) (eps: Tensor) : Tensor * Tensor =
        let perDatapoint = ElboEstimator.ofKind c.Estimator m x eps
        withWeightPrior c n (VaeModel.parameters m) (perDatapoint.sum()), perDatapoint

    /// Reads a value and checks it and every gradient for finiteness in one host synchronisation (a NaN
    /// or infinity anywhere makes the gradients' sum non-finite). Returns the value, or raises
    /// NonFiniteBoundException for the step.
    let requireFinite (step: int64) (value: Tensor) (grads: Tensor[]) : float =
        let gsum = torch.stack(grads |> Array.map (fun t -> t.sum())).sum()
        let both = torch.stack([| value.to_type(torch.float64); gsum.to_type(torch.float64) |]).data<double>().ToArray()
        if not (Double.IsFinite both.[0] && Double.IsFinite both.[1]) then raise (NonFiniteBoundException(step, both.[0]))
        both.[0]

    /// One step of Algorithm 1 on training data [N; D]: minibatch, noise, gradient of the
    /// objective, Adagrad ascent (in place). Returns the new state and the minibatch's mean bound
    /// per datapoint. Raises NonFiniteBoundException, before any update, when the estimate or a gradient is not finite.
    let step (c: AevbConfig) (data: Tensor) (g: torch.Generator) (s: TrainerState) : TrainerState * float =
        use _ = torch.NewDisposeScope()
        let x = minibatch c data g
        let eps = ElboEstimator.noise c.Samples c.BatchSize s.Model g
        let parameters = VaeModel.tensors s.Model
        let objective, perDatapoint = objective c data.shape.[0] s.Model x eps
        let grads = torch.autograd.grad([| objective |], parameters) |> Seq.toArray
        let bound = requireFinite s.Optimizer.Steps (perDatapoint.mean()) grads
        let opt = Adagrad.ascend c.Optimizer s.Optimizer parameters grads
        { s with Optimizer = opt }, bound

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

    /// Samples per chunk of a K-sample estimate on x [B; D]: a chunk's decoder output (chunk x B x D values) stays
    /// near 4 million values (16 MB in float32), below glibc's largest mmap threshold (32 MB). With 64 MB chunks the
    /// K = 5000 estimate ran four to five times slower in an F# script process (the same speed in `vae`; the cause was
    /// not pinned down), and smaller tensors keep the elementwise passes nearer the cache.
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
