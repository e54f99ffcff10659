// Frey Face, J = 10, the paper's settings: the test bound after 10^6 samples and the latent dimensions in use, seed by seed.
// Build first (`dotnet build Vae.Cli -c Release`), then run with the build's patched natives on the path:
//   LD_LIBRARY_PATH=Vae.Cli/bin/Release/net10.0/runtimes/linux-x64/native dotnet fsi scripts/frey-seeds.fsx -- 0 1 2
// Options before the seeds: --samples N (default 1e6), --step-size S (0.02), --init-std S (0.01), --no-warm-up,
// --float64 (the model and data in float64), --shuffled-epochs (minibatches from a fresh permutation each epoch
// instead of the paper's random indices).
// Same trajectories as `vae train --dataset frey-face --seed S --threads 1` (the autograd step, one libtorch thread).
#r "../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"

open TorchSharp
open Vae.Core
open Vae.Core.Data

Torch.setThreads 1
let args = fsi.CommandLineArgs |> Array.skip 1 |> Array.filter ((<>) "--") |> List.ofArray
let flag name = List.contains name args
let float64, shuffledEpochs = flag "--float64", flag "--shuffled-epochs"
let rec parse (samples, step, std, warm, seeds) = function
    | "--samples" :: v :: rest -> parse (int64 (float v), step, std, warm, seeds) rest
    | "--step-size" :: v :: rest -> parse (samples, float v, std, warm, seeds) rest
    | "--init-std" :: v :: rest -> parse (samples, step, float v, warm, seeds) rest
    | "--no-warm-up" :: rest -> parse (samples, step, std, false, seeds) rest
    | ("--float64" | "--shuffled-epochs") :: rest -> parse (samples, step, std, warm, seeds) rest
    | s :: rest -> parse (samples, step, std, warm, seeds @ [ int64 s ]) rest
    | [] -> samples, step, std, warm, (if List.isEmpty seeds then [ 0L ] else seeds)
let samples, stepSize, initStd, warmUp, seeds = parse (1_000_000L, 0.02, 0.01, true, []) args
let dtype = if float64 then torch.float64 else torch.float32

let frey = FreyFace.load DataOptions.Default
let toTensor (x: Images) = Torch.ofArray2 x.Count x.Dimension x.Pixels
let train, test = (toTensor frey.Train).to_type(dtype), (toTensor frey.Test).to_type(dtype)
let paper = Aevb.paper stepSize
let settings seed =
    { Algorithm = AevbAlgorithm
      Model = { InputDim = 560; HiddenUnits = 200; LatentDim = 10; Likelihood = GaussianSigmoidMean; DType = dtype; InitStd = initStd }
      Aevb = { paper with Optimizer = { paper.Optimizer with WarmUp = (if warmUp then paper.Optimizer.WarmUp else 0) } }
      Seed = seed
      Dataset = frey.Description }

/// Algorithm 1 with minibatches taken in order from a fresh permutation of the training set each epoch.
let trainShuffled (s: RunSettings) : VaeModel =
    let run = TrainingRun.create s
    let g, n, m = run.Generator, train.shape.[0], int64 s.Aevb.BatchSize
    let mutable state, order, position = run.State, torch.randperm(n, generator = g), 0L
    for _ in 1L .. samples / m do
        if position + m > n then
            order <- torch.randperm(n, generator = g)
            position <- 0L
        use _ = torch.NewDisposeScope()
        let x = train.index_select(0L, order.narrow(0L, position, m))
        position <- position + m
        let eps = ElboEstimator.noise 1 (int m) state.Model g
        let parameters = VaeModel.tensors state.Model
        let objective, _ = Aevb.objective s.Aevb n state.Model x eps
        let grads = torch.autograd.grad([| objective |], parameters) |> Seq.toArray
        state <- { state with Optimizer = Adagrad.ascend s.Aevb.Optimizer state.Optimizer parameters grads }
    state.Model

printfn "%s; step size %g, initial std %g, warm-up %b, %s, %s, %d samples" frey.Description stepSize initStd warmUp
    (if float64 then "float64" else "float32") (if shuffledEpochs then "shuffled epochs" else "random indices") samples
printfn "seed  train bound  test bound  dimensions with KL > 1 nat  KL per dimension (nats, training set)"
for seed in seeds do
    let m =
        if shuffledEpochs then trainShuffled (settings seed)
        else (TrainingRun.create (settings seed) |> TrainingRun.fit train (samples / 100L) System.Threading.CancellationToken.None (fun _ _ -> ())).State.Model
    let g = Torch.generator (seed * 1_000_003L + samples / 100L)
    let q = Torch.noGrad (fun () -> VaeModel.encode m train)
    // Appendix B's KL per latent dimension, averaged over the training set: near 0 for a dimension the model does not use.
    let kl = Torch.noGrad (fun () -> ((q.Mean * q.Mean + q.LogVar.exp() - q.LogVar - 1.0).mean([| 0L |]) * 0.5).to_type(torch.float64).data<float>().ToArray())
    printfn "%4d  %11.2f  %10.2f  %27d  %s" seed (Evaluation.bound B m train 1700 g) (Evaluation.bound B m test 265 g)
        (kl |> Array.filter (fun v -> v > 1.0) |> Array.length) (kl |> Array.map (sprintf "%.2f") |> String.concat " ")
