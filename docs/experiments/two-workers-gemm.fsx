#r "../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
open TorchSharp
open Vae.Core
let n = int64 fsi.CommandLineArgs.[1]
let a = torch.rand(n, 784L)
let w = torch.rand(500L, 784L)
let reps = 200
let job () =
    use _ = torch.NewDisposeScope()
    for _ in 1 .. reps do a.mm(w.t()) |> ignore
    0
let flops = 2.0 * float n * 784.0 * 500.0 * float reps
let time f = let sw = System.Diagnostics.Stopwatch.StartNew() in f () |> ignore; sw.Elapsed.TotalSeconds
for _ in 1 .. 3 do
    Torch.setThreads 1
    let t1 = time job
    Torch.setThreads 2
    let t2 = time job
    Torch.setThreads 1
    let tw = time (fun () -> Torch.sideBySide job job)
    printfn "n=%d: 1 thread %.0f GFLOP/s; libtorch 2 threads %.0f; two workers %.0f (total)" n (flops / t1 / 1e9) (flops / t2 / 1e9) (2.0 * flops / tw / 1e9)
