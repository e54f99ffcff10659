// The evaluation's output multiply (5,100 x 500 by 500 x 784): libtorch on two threads against two single-threaded
// workers on half the rows each, alternating.
//   dotnet fsi --optimize+ docs/experiments/iwae-two-workers-gemm.fsx
#r "../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
open System
open System.Threading
open TorchSharp
open Vae.Core
NativeTuning.retainFreedMemory () |> ignore
let h = torch.rand(5100L, 500L)
let w = torch.rand(784L, 500L)
let halves = [| h.narrow(0L, 0L, 2550L); h.narrow(0L, 2550L, 2550L) |]
let reps = 40
let flops = 2.0 * 5100.0 * 784.0 * 500.0 * float reps
// Two long-lived workers, each with libtorch at 1 thread, signalled per round.
let go = [| new SemaphoreSlim(0); new SemaphoreSlim(0) |]
let fin = new CountdownEvent(2)
let mutable rounds = 0
for i in 0 .. 1 do
    Thread((fun () ->
        torch.set_num_threads 1
        while true do
            go.[i].Wait()
            use _ = torch.NewDisposeScope()
            halves.[i].mm(w.t()) |> ignore
            fin.Signal() |> ignore), IsBackground = true).Start()
let twoWorkers () =
    for _ in 1 .. reps do
        fin.Reset(2)
        go.[0].Release() |> ignore; go.[1].Release() |> ignore
        fin.Wait()
let libtorch2 () =
    for _ in 1 .. reps do
        use _ = torch.NewDisposeScope()
        h.mm(w.t()) |> ignore
let time f = let sw = Diagnostics.Stopwatch.StartNew() in f (); sw.Elapsed.TotalSeconds
Torch.setThreads 2
libtorch2 (); twoWorkers ()
for _ in 1 .. 4 do
    let a = time libtorch2
    let b = time twoWorkers
    printfn "5100 x 500 x 784: libtorch 2 threads %.0f GFLOP/s; two 1-thread workers %.0f GFLOP/s" (flops / a / 1e9) (flops / b / 1e9)
