// Trains a small VAE on MNIST from F# and prints its bounds.
// Build first (`dotnet build Vae.Cli -c Release`), then run (the library loads the build's patched natives itself):
//   dotnet fsi scripts/train-small.fsx
#r "../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"

open TorchSharp
open Vae.Core
open Vae.Core.Data

Torch.setThreads 2
NativeTuning.configureMkl () |> ignore // MKL's kernels as vae chooses them (VAE_MKL=default keeps MKL's own)
let mnist = Mnist.load DataOptions.Default |> Mnist.paperSplit
let toTensor (x: Images) = Torch.ofArray2 x.Count x.Dimension x.Pixels
let train, test = toTensor mnist.Train, toTensor mnist.Test

// J = 5, 200 hidden units, the paper's AEVB settings otherwise (estimator B, M = 100, Adagrad).
let settings =
    { Algorithm = AevbAlgorithm
      Model = { InputDim = 784; HiddenUnits = 200; LatentDim = 5; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.01; HiddenLayers = 1 }
      Learner = LearnerConfig.paper 0.02
      Seed = 1L
      Dataset = mnist.Description }

let run = TrainingRun.create settings |> TrainingRun.fit train 3000L System.Threading.CancellationToken.None (fun _ _ -> ())
let g = TrainingRun.evaluationGenerator run
printfn "after %d samples: test bound %.2f, IWAE (K = 100, 1000 images) %.2f nats per datapoint"
    run.SamplesSeen
    (Evaluation.bound B run.State.Model test 1000 g)
    (Evaluation.importanceWeighted run.State.Model (test.narrow(0L, 0L, 1000L)) 100 100 g)
