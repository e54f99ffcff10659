// Frey Face, J = 10, the paper's settings: the test bound after 10^6 samples and the latent dimensions in use, seed by seed.
// Build first (`dotnet build Vae.Cli -c Release`), then run with the build's patched natives on the path:
//   LD_LIBRARY_PATH=Vae.Cli/bin/Release/net10.0/runtimes/linux-x64/native dotnet fsi scripts/frey-seeds.fsx -- 0 1 2
// Options before the seeds: --samples N (default 1e6), --step-size S (0.02), --init-std S (0.01), --no-warm-up.
// Same trajectories as `vae train --dataset frey-face --seed S --threads 1` (the autograd step, one libtorch thread).
#r "../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"

open TorchSharp
open Vae.Core
open Vae.Core.Data

Torch.setThreads 1
let args = fsi.CommandLineArgs |> Array.skip 1 |> Array.filter ((<>) "--") |> List.ofArray
let rec parse (samples, step, std, warm, seeds) = function
    | "--samples" :: v :: rest -> parse (int64 (float v), step, std, warm, seeds) rest
    | "--step-size" :: v :: rest -> parse (samples, float v, std, warm, seeds) rest
    | "--init-std" :: v :: rest -> parse (samples, step, float v, warm, seeds) rest
    | "--no-warm-up" :: rest -> parse (samples, step, std, false, seeds) rest
    | s :: rest -> parse (samples, step, std, warm, seeds @ [ int64 s ]) rest
    | [] -> samples, step, std, warm, (if List.isEmpty seeds then [ 0L ] else seeds)
let samples, stepSize, initStd, warmUp, seeds = parse (1_000_000L, 0.02, 0.01, true, []) args

let frey = FreyFace.load DataOptions.Default
let toTensor (x: Images) = Torch.ofArray2 x.Count x.Dimension x.Pixels
let train, test = toTensor frey.Train, toTensor frey.Test
let paper = Aevb.paper stepSize
let settings seed =
    { Algorithm = AevbAlgorithm
      Model = { InputDim = 560; HiddenUnits = 200; LatentDim = 10; Likelihood = GaussianSigmoidMean; DType = torch.float32; InitStd = initStd }
      Aevb = { paper with Optimizer = { paper.Optimizer with WarmUp = (if warmUp then paper.Optimizer.WarmUp else 0) } }
      Seed = seed
      Dataset = frey.Description }

printfn "%s; step size %g, initial std %g, warm-up %b, %d samples" frey.Description stepSize initStd warmUp samples
printfn "seed  train bound  test bound  dimensions with KL > 1 nat  KL per dimension (nats, training set)"
for seed in seeds do
    let run = TrainingRun.create (settings seed) |> TrainingRun.fit train (samples / 100L) System.Threading.CancellationToken.None (fun _ _ -> ())
    let m = run.State.Model
    let g = TrainingRun.evaluationGenerator run
    let q = Torch.noGrad (fun () -> VaeModel.encode m train)
    // Appendix B's KL per latent dimension, averaged over the training set: near 0 for a dimension the model does not use.
    let kl = Torch.noGrad (fun () -> ((q.Mean * q.Mean + q.LogVar.exp() - q.LogVar - 1.0).mean([| 0L |]) * 0.5).data<float32>().ToArray())
    printfn "%4d  %11.2f  %10.2f  %27d  %s" seed (Evaluation.bound B m train 1700 g) (Evaluation.bound B m test 265 g)
        (kl |> Array.filter (fun v -> v > 1.0f) |> Array.length) (kl |> Array.map (sprintf "%.2f") |> String.concat " ")
