/// The resume matrix: for every learner and step path a run stopped at a checkpoint and resumed from its bytes ends
/// with the checkpoint an uninterrupted run writes, byte for byte (parameters, optimiser state, chains, generator).
module Vae.Properties.ResumeProperties

open Expecto
open TorchSharp
open Vae.Core
open Vae.Properties.Generators

/// Adagrad with a short warm-up, so that updates happen on both sides of the stop.
let private adagrad = AdagradOptimizer { Adagrad.paper 0.05 with WarmUp = 3 }

let private model likelihood layers =
    { InputDim = 10; HiddenUnits = 7; LatentDim = 2; Likelihood = likelihood; DType = torch.float32; InitStd = 0.1; HiddenLayers = layers }

let private learner = { LearnerConfig.paper 0.05 with BatchSize = 8; Optimizer = adagrad }

/// The matrix: a name, the algorithm, the model and the learner's settings.
let private runs =
    [ "AEVB, hand-derived float32", AevbAlgorithm, model Bernoulli 1, learner
      "AEVB, one-pass float32", AevbAlgorithm, model Bernoulli 1, { learner with Gradient = OnePass }
      "AEVB, bfloat16 multiplies", AevbAlgorithm, model Bernoulli 1, { learner with MixedPrecision = true }
      "AEVB, dynamic binarisation", AevbAlgorithm, model Bernoulli 1, { learner with Binarize = true }
      "AEVB, Frey Face's sigmoid-mean Gaussian decoder", AevbAlgorithm, model GaussianSigmoidMean 1, learner
      "AEVB, estimator A with L = 2 (hand-derived)", AevbAlgorithm, model Bernoulli 1, { learner with Estimator = A; Samples = 2 }
      "AEVB, estimator A with L = 2 (autograd)", AevbAlgorithm, model Bernoulli 1, { learner with Estimator = A; Samples = 2; Gradient = Autograd }
      "AEVB, importance-weighted K = 3 with DReG", AevbAlgorithm, model Bernoulli 1, { learner with Estimator = Iwae; Samples = 3; EncoderGradient = DoublyReparameterised }
      "AEVB, importance-weighted K = 3, two tanh layers, Adam (hand-derived, moments as vectors)", AevbAlgorithm, model Bernoulli 2,
      { learner with Estimator = Iwae; Samples = 3; Optimizer = AdamOptimizer(Adam.burda 0.01 BurdaStages) }
      "AEVB, two tanh layers and Adam under Burda's schedule", AevbAlgorithm, model Bernoulli 2, { learner with Optimizer = AdamOptimizer(Adam.burda 0.01 BurdaStages) }
      "wake-sleep", WakeSleepAlgorithm, model Bernoulli 1, learner
      "wake-sleep, anglepy's recognition model", WakeSleepAlgorithm, model GaussianSigmoidMean 1, { learner with WakeSleep = Anglepy }
      "Monte Carlo EM", McemAlgorithm, model Bernoulli 1, learner ]

[<Tests>]
let tests =
    testList "resume" [
        for name, algorithm, config, learner in runs do
            testCase (sprintf "%s: stopped at a checkpoint and resumed, it writes the uninterrupted run's checkpoint byte for byte" name) <| fun () ->
                use _ = torch.NewDisposeScope()
                let data = torch.rand([| 40L; 10L |], generator = Torch.generator 11L)
                let settings = { Algorithm = algorithm; Model = config; Learner = learner; Seed = 9L; Dataset = "resume" }
                // Monte Carlo EM's steps are whole EM iterations.
                let stop, until = if algorithm = McemAlgorithm then 2L, 5L else 11L, 24L
                let fit = fitTo data
                let bytes (r: TrainingRun) = Checkpoint.toBytes (TrainingRun.toCheckpoint Map.empty r)
                let whole = TrainingRun.create settings |> fit until
                let stopped = bytes (TrainingRun.create settings |> fit stop)
                let resumed = TrainingRun.ofCheckpoint "resume.vae" (Checkpoint.ofBytes "resume.vae" stopped) |> fit until
                Expect.isTrue (bytes whole = bytes resumed) "the same checkpoint"
                Expect.isFalse (sameBits whole.State.Model.ParameterVector (TrainingRun.create settings).State.Model.ParameterVector) "the run trained"
    ]
