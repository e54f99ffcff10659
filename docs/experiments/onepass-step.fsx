// The fused step (M = 100, MNIST, the paper's settings) with Adagrad through libtorch (Adagrad.ascend) and with the
// one-pass update (Adagrad.ascendOnePass), alternated round by round in one process: medians of 9 rounds of 100 steps.
//   dotnet fsi --optimize+ docs/experiments/onepass-step.fsx
#r "../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
open TorchSharp
open Vae.Core
open Vae.Core.Data
NativeTuning.retainFreedMemory () |> ignore
let mnist = Mnist.load DataOptions.Default |> Mnist.paperSplit
let data = Torch.ofArray2 mnist.Train.Count mnist.Train.Dimension mnist.Train.Pixels
let median (xs: float[]) = (Array.sort xs).[xs.Length / 2]
for threads in [ 2; 1 ] do
  Torch.setThreads threads
  for mixed in [ true; false ] do
    let c = { LearnerConfig.paper 0.02 with MixedPrecision = mixed }
    let g = Torch.generator 6L
    let state0 = FusedAevb.prepare (Aevb.init (VaeModel.create { InputDim = 784; HiddenUnits = 500; LatentDim = 20; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.01 } g))
    let b = FusedAevb.workspace c state0.Model.Config
    let weights = (VaeModel.layout state0.Model.Config).WeightCount
    let parameters = state0.Model.ParameterVector
    let mutable opt = state0.Optimizer
    let step onePass =
        use _ = torch.NewDisposeScope()
        let x = Aevb.minibatch c data g
        let eps = torch.randn([| 100L; 20L |], generator = g)
        let mb = FusedAevb.gradient c 50000L b state0.Model x eps
        Aevb.requireFinite 0L mb [| b.Gradient.narrow(0L, weights, b.Gradient.shape.[0] - weights) |] |> ignore
        opt <- (if onePass then Adagrad.ascendOnePass c.Optimizer opt parameters b.Gradient else Adagrad.ascend c.Optimizer opt [| parameters |] [| b.Gradient |])
    for _ in 1 .. 150 do step true
    let rounds = [| for _ in 1 .. 9 ->
                      [| for onePass in [ false; true ] ->
                            let sw = System.Diagnostics.Stopwatch.StartNew()
                            for _ in 1 .. 100 do step onePass
                            sw.Elapsed.TotalMilliseconds / 100.0 |] |]
    printfn "%d threads, %s: step with libtorch Adagrad %.3f ms, with the one-pass update %.3f ms (medians of 9 rounds of 100)"
        threads (if mixed then "bfloat16" else "float32") (median (rounds |> Array.map (fun r -> r.[0]))) (median (rounds |> Array.map (fun r -> r.[1])))
