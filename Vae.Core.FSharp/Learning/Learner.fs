namespace Vae.Core

open System
open TorchSharp

/// How a run's steps compute their gradient. Auto: the hand-derived step (FusedAevb) wherever it covers the
/// configuration, else autograd; Autograd: always the algorithm's autograd step; HandDerived: the hand-derived step,
/// refused where it does not cover the configuration. The trajectories agree to rounding (property-tested in float64).
type GradientChoice =
    | Auto
    | Autograd
    | HandDerived

/// What every learner (AEVB, wake-sleep, Monte Carlo EM) is configured by: the estimator, the minibatch, Adagrad, the
/// weight prior, binarisation, precision and the gradient path; LearnerConfig.paper gives section 5's settings.
type LearnerConfig =
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


/// Section 5's settings.
[<RequireQualifiedAccess>]
module LearnerConfig =

    /// The paper's settings: estimator B, L = 1, M = 100, Adagrad with the given step size, weight prior, grey levels.
    let paper (stepSize: float) =
        { Estimator = B; Samples = 1; BatchSize = 100; Optimizer = Adagrad.paper stepSize; WeightPrior = true; Binarize = false; MixedPrecision = false; Gradient = Auto }
