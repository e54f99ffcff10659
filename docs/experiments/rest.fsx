// The fused bfloat16 step's parts timed alone (minibatch draw, noise, finiteness check, an empty dispose scope, the
// gradient) against the whole step, on 1 and 2 threads; medians of 7 rounds.
//   dotnet fsi --optimize+ docs/experiments/rest.fsx
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
let time reps (f: unit -> unit) =
    for _ in 1 .. 100 do f ()
    median [| for _ in 1 .. 7 ->
                let sw = System.Diagnostics.Stopwatch.StartNew()
                for _ in 1 .. reps do f ()
                sw.Elapsed.TotalMilliseconds / float reps |]
let c = { LearnerConfig.paper 0.02 with MixedPrecision = true }
let g = Torch.generator 6L
let state0 = FusedAevb.prepare (Aevb.init (VaeModel.create { InputDim = 784; HiddenUnits = 500; LatentDim = 20; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.01 } g))
let b = FusedAevb.workspace c state0.Model.Config
let weights = (VaeModel.layout state0.Model.Config).WeightCount
let x = Aevb.minibatch c data g
let eps = torch.randn([| 100L; 20L |], generator = g)
for t in [ 1; 2 ] do
    Torch.setThreads t
    let scoped f () = (use _ = torch.NewDisposeScope() in f ())
    let mb = time 1000 (scoped (fun () -> Aevb.minibatch c data g |> ignore))
    let idx = torch.randint(0L, 50000L, [| 100L |], dtype = torch.int64, generator = g)
    let gather = time 1000 (scoped (fun () -> data.index_select(0L, idx) |> ignore))
    let rint = time 1000 (scoped (fun () -> torch.randint(0L, 50000L, [| 100L |], dtype = torch.int64, generator = g) |> ignore))
    let noise = time 1000 (scoped (fun () -> ElboEstimator.noise 1 100 state0.Model g |> ignore))
    let mean = FusedAevb.gradient c 50000L b state0.Model x eps
    let finite = time 1000 (scoped (fun () -> Aevb.requireFinite 0L mean [| b.Gradient.narrow(0L, weights, b.Gradient.shape.[0] - weights) |] |> ignore))
    let scope = time 1000 (fun () -> (use _ = torch.NewDisposeScope() in ()))
    let grad = time 200 (scoped (fun () -> FusedAevb.gradient c 50000L b state0.Model x eps |> ignore))
    let mutable s = state0
    let step = time 200 (fun () -> s <- fst (FusedAevb.step c data g b s))
    printfn "%d threads: minibatch %.3f (randint %.3f, index_select %.3f), noise %.3f, finiteness check %.3f, empty scope %.4f; gradient %.3f; whole step %.3f ms" t mb rint gather noise finite scope grad step
