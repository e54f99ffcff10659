// libtorch's float32 matrix multiply at the step's and the evaluation's shapes, with MKL's own kernel choice or with
// NativeTuning.useMklAvx512 (MKL chooses once per process, so run the script once for each):
//   dotnet fsi docs/experiments/mkl-kernels.fsx default 1
//   dotnet fsi docs/experiments/mkl-kernels.fsx avx512 1
#r "../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
open TorchSharp
open Vae.Core

let args = fsi.CommandLineArgs
let choice, threads = args.[1], int args.[2]
Torch.setThreads threads
if choice = "avx512" then printfn "%A" (NativeTuning.useMklAvx512 ()) else printfn "MKL's own dispatch"

/// GFLOP/s of a b for a [m; k] and b [k; n] (b laid out as n x k and transposed when transposed is true), median of 5.
let rate (m: int64) (k: int64) (n: int64) (transposed: bool) =
    let a = torch.randn([| m; k |])
    let b = if transposed then torch.randn([| n; k |]).t() else torch.randn([| k; n |])
    let reps = max 3 (int (5e9 / (2.0 * float m * float n * float k)))
    torch.mm(a, b).Dispose()
    let once () =
        let sw = System.Diagnostics.Stopwatch.StartNew()
        for _ in 1 .. reps do torch.mm(a, b).Dispose()
        2.0 * float m * float n * float k * float reps / sw.Elapsed.TotalSeconds / 1e9
    Array.init 5 (fun _ -> once ()) |> Array.sort |> fun r -> r.[2]

for (m, k, n, t) in [ 100L, 784L, 500L, true; 1000L, 784L, 500L, true; 100L, 784L, 500L, false; 5100L, 500L, 784L, true; 2048L, 2048L, 2048L, false ] do
    printfn "%d x %d x %d%s, %d thread(s): %.1f GFLOP/s" m k n (if t then " (b transposed)" else "") threads (rate m k n t)
