// Trains a J = 2 VAE on MNIST from F# (AEVB, the paper's settings, 200 hidden units), prints its bounds and draws
// Appendix A's learned manifold as a PNG mosaic.
// Build first (`dotnet build Vae.Cli -c Release`), then run (the library loads the build's patched natives itself):
//   dotnet fsi scripts/manifold.fsx [samples] [out.png]
#r "../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
#r "../Vae.Cli/bin/Release/net10.0/SkiaSharp.dll"
#r "../Vae.Cli/bin/Release/net10.0/Vae.dll"

open System.Threading
open TorchSharp
open Vae.Core
open Vae.Core.Data
open Vae.Core.Plots

let args = fsi.CommandLineArgs |> Array.skip 1
let samples = if args.Length > 0 then int64 args.[0] else 300_000L
let output = if args.Length > 1 then args.[1] else "manifold.png"

Torch.setThreads 2
NativeTuning.configureMkl () |> ignore // MKL's kernels as vae chooses them (VAE_MKL=default keeps MKL's own)
let mnist = Mnist.load DataOptions.Default |> Mnist.paperSplit
let toTensor (x: Images) = Torch.ofArray2 x.Count x.Dimension x.Pixels
let train, test = toTensor mnist.Train, toTensor mnist.Test

let settings =
    { Algorithm = AevbAlgorithm
      Model = { InputDim = 784; HiddenUnits = 200; LatentDim = 2; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.01; HiddenLayers = 1 }
      Learner = LearnerConfig.paper 0.02
      Seed = 1L
      Dataset = mnist.Description }

// Algorithm 1 as a fold over steps: TrainingRun.fit runs steps until the step count reaches the budget.
let steps = samples / int64 settings.Learner.BatchSize
let run = TrainingRun.create settings |> TrainingRun.fit train steps CancellationToken.None (fun _ _ -> ())
let model = run.State.Model
let g = TrainingRun.evaluationGenerator run
printfn "after %d samples: train bound %.2f, test bound %.2f nats per datapoint (estimator B, grey levels)"
    run.SamplesSeen (Evaluation.bound B model train 1000 g) (Evaluation.bound B model test 1000 g)

// Appendix A: decoder means on a 20 x 20 grid placed at the inverse Gaussian CDF of an even grid on the unit square.
let n = 20
let means = Torch.noGrad (fun () -> VaeModel.decodeMean model (Mosaic.manifoldGrid n torch.float32))
let values = means.data<float32>().ToArray()
Vae.ImageMosaic.SavePng(output, Array2D.init (n * n) 784 (fun i k -> values.[i * 784 + k]), 28, 28, n)
printfn "wrote %s" output
