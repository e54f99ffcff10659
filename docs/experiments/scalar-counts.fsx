// Native Scalars left to the finalizer by 100 calls of one operation (PERFORMANCE.md, Monte Carlo EM's memory):
//   dotnet fsi docs/experiments/scalar-counts.fsx VARIANT     (tt-add, tt-sub, tt-mul, t-addf, t-mulf, t-addS, t-mulS, transition, ...)
// While it sleeps at the end: dotnet-dump collect -p PID --type Heap, then dotnet-dump analyze DUMP -c finalizequeue
// and read the TorchSharp.Scalar count.
#r "../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
open System
open TorchSharp
open Vae.Core
Torch.setThreads 1
let variant = fsi.CommandLineArgs.[1]
let g = Torch.generator 1L
let m0 = VaeModel.create { InputDim = 784; HiddenUnits = 100; LatentDim = 3; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.01; HiddenLayers = 1 } g
let m = VaeModel.requireGrad true m0
let x = torch.rand([| 100L; 784L |], generator = g)
let z = torch.randn([| 100L; 3L |], generator = g)
let eps = torch.full([| 100L; 1L |], Torch.scalar 0.01)
GC.Collect(); GC.WaitForPendingFinalizers()
for i in 1 .. 100 do
    use _ = torch.NewDisposeScope()
    match variant with
    | "logjoint" -> VaeModel.logJoint m x z |> ignore
    | "loglik" -> VaeModel.logLikelihood m z x |> ignore
    | "prior" -> Distributions.standardNormalLogDensity z |> ignore
    | "bern" -> Distributions.bernoulliLogProbability z z |> ignore
    | "logits" -> (match m.Decoder with BernoulliDecoder p -> BernoulliMlp.logits p z |> ignore | _ -> ())
    | "valgrad" -> Hmc.valueAndGradient (VaeModel.logJoint m x) z |> ignore
    | "transition" -> Hmc.transition Hmc.paper (VaeModel.logJoint m x) z eps g |> ignore
    | "tt-add" -> (z + z) |> ignore
    | "tt-sub" -> (z - z) |> ignore
    | "tt-mul" -> (z * z) |> ignore
    | "t-addf" -> (z + 1.0) |> ignore
    | "t-mulf" -> (z * 2.0) |> ignore
    | "t-addS" -> (z + Torch.constant 1.0) |> ignore
    | "t-mulS" -> (z * Torch.constant 2.0) |> ignore
    | _ -> ()
printfn "pid %d" Environment.ProcessId
Threading.Thread.Sleep 20000
