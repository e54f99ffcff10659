/// The learners (AEVB, wake-sleep, Monte Carlo EM) against a linear-Gaussian model (factor analysis),
/// whose log-likelihood is known in closed form: each must raise the true log p(x) of its data.
module Vae.Properties.LearningProperties

open System
open System.Threading
open Expecto
open TorchSharp
open Vae.Core
open Vae.Properties.Generators

/// A factor-analysis model with D outputs and J latent dimensions: W ~ 1.5 N(0, 1), b ~ N(0, 1), noise sd 0.5.
let private groundTruth (seed: int64) (d: int) (j: int) : LinearGaussian =
    let g = Torch.generator seed
    { Mean = { Weight = torch.randn([| int64 d; int64 j |], dtype = f64, generator = g) * 1.5
               Bias = torch.randn([| int64 d |], dtype = f64, generator = g) }
      LogVar = torch.full([| int64 d |], Torch.scalar (Math.Log 0.25), dtype = f64) }

/// n datapoints drawn from p(z) p(x|z): [n; D].
let private draw (p: LinearGaussian) (n: int) (seed: int64) =
    let g = Torch.generator seed
    let z = torch.randn([| int64 n; p.Mean.Weight.shape.[1] |], dtype = f64, generator = g)
    let q = LinearGaussian.apply p z
    q.Mean + (q.LogVar * 0.5).exp() * torch.randn(q.Mean.shape, dtype = f64, generator = g)

/// Trains a linear-Gaussian VAE (20 hidden encoder units) on data with the algorithm for the given number
/// of steps (M = 50, Adagrad 0.05 with a 10-minibatch warm-up, weight prior); returns the exact mean
/// log p(x) before training and after each quarter of the steps.
let private train (algorithm: Algorithm) (data: Tensor) (j: int) (steps: int64) =
    let settings =
        { Algorithm = algorithm
          Model = { InputDim = int data.shape.[1]; HiddenUnits = 20; LatentDim = j; Likelihood = LinearGaussian; DType = f64; InitStd = 0.01; HiddenLayers = 1 }
          Learner = { LearnerConfig.paper 0.05 with BatchSize = 50; Optimizer = AdagradOptimizer { Adagrad.paper 0.05 with WarmUp = 10 } }
          Seed = 3L; Dataset = "factor analysis" }
    let logLik (r: TrainingRun) = (VaeModel.exactLogLikelihood r.State.Model data).mean().ToDouble()
    let mutable run = TrainingRun.create settings
    [ yield logLik run
      for k in 1L .. 4L do
          run <- TrainingRun.fit data (steps * k / 4L) CancellationToken.None (fun _ _ -> ()) run
          yield logLik run ]

/// Trains with the algorithm and checks that the true log-likelihood rose well above its start and ended
/// within tolerance nats per datapoint of the generating model's own log-likelihood on the data.
let private raisesTheTrueLogLikelihood (algorithm: Algorithm) (steps: int64) (tolerance: float) =
    let truth = groundTruth 11L 6 2
    let data = draw truth 500 12L
    let best = (LinearGaussian.logMarginal truth data).mean().ToDouble()
    let trace = train algorithm data 2 steps
    let first, last = List.head trace, List.last trace
    Expect.isGreaterThan last (first + 5.0) (sprintf "%A: log p(x) %.3f -> %.3f (trace %A)" algorithm first last trace)
    Expect.isGreaterThan last (best - tolerance) (sprintf "%A: log p(x) %.3f, the generating model's %.3f (trace %A)" algorithm last best trace)
    // The second half of training still gains (or holds, within noise): no collapse after the rise.
    Expect.isGreaterThan last (trace.[2] - 0.02) (sprintf "%A: log p(x) fell from %.3f to %.3f" algorithm trace.[2] last)

[<Tests>]
let tests =
    testList "learning (linear-Gaussian model)" [
        testPropertyWithConfig (config 20) "the linear-Gaussian log-marginal equals numerical integration over z" <| fun (seed: int) ->
            use _ = torch.NewDisposeScope()
            let g = Torch.generator (int64 seed)
            let p : LinearGaussian =
                { Mean = { Weight = torch.randn([| 3L; 1L |], dtype = f64, generator = g); Bias = torch.randn([| 3L |], dtype = f64, generator = g) }
                  LogVar = torch.randn([| 3L |], dtype = f64, generator = g) * 0.5 }
            let x = torch.randn([| 4L; 3L |], dtype = f64, generator = g) * 2.0
            // p(x) = integral of N(z; 0, 1) p(x|z) dz by the trapezoid rule on [-12, 12].
            let z = torch.linspace(-12.0, 12.0, 24001L, dtype = f64).unsqueeze(-1L).unsqueeze(-1L)          // [G; 1; 1]
            let logIntegrand = Distributions.gaussianLogDensity (LinearGaussian.apply p (z.expand(-1L, 4L, 1L))) x + Distributions.standardNormalLogDensity (z.expand(-1L, 4L, 1L))
            let numeric = logIntegrand.logsumexp(0L) + Math.Log(24.0 / 24000.0)
            let exact = LinearGaussian.logMarginal p x
            (numeric - exact).abs().max().ToDouble() < 1e-6

        testCase "AEVB raises the true log-likelihood to near the generating model's" <| fun () ->
            raisesTheTrueLogLikelihood AevbAlgorithm 2000L 0.5
        testCase "wake-sleep raises the true log-likelihood to near the generating model's" <| fun () ->
            raisesTheTrueLogLikelihood WakeSleepAlgorithm 2000L 0.8
        testCase "Monte Carlo EM raises the true log-likelihood to the maximum-likelihood fit" <| fun () ->
            // EM on the whole data set: the fit reaches the generating model's likelihood (the MLE is above it).
            raisesTheTrueLogLikelihood McemAlgorithm 1500L 0.02
    ]
