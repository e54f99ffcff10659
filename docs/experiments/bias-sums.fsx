// What fusing the bias gradients into the weight-gradient multiplies could save: the fused step's four bias sums
// (sum over the minibatch of [M; 784], [M; 500], [M; 40], [M; 500] float32 tensors) against the whole step's
// multiplies, at M = 100 on 1 and 2 libtorch threads. Median of 7 rounds of 2000 repetitions.
//   dotnet fsi docs/experiments/bias-sums.fsx
#r "../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
open TorchSharp
open Vae.Core
NativeTuning.retainFreedMemory () |> ignore
let m = 100L
let g = Torch.generator 1L
let r (shape: int64[]) = torch.randn(shape, generator = g)
let signals = [| r [| m; 784L |]; r [| m; 500L |]; r [| m; 40L |]; r [| m; 500L |] |]
let targets = [| torch.zeros(784L); torch.zeros(500L); torch.zeros(40L); torch.zeros(500L) |]
let median (xs: float[]) = (Array.sort xs).[xs.Length / 2]
let time reps (f: unit -> unit) =
    for _ in 1 .. 200 do f ()
    median [| for _ in 1 .. 7 ->
                let sw = System.Diagnostics.Stopwatch.StartNew()
                for _ in 1 .. reps do f ()
                sw.Elapsed.TotalMilliseconds / float reps |]
let biasSums () =
    use _ = torch.NewDisposeScope()
    for i in 0 .. 3 do targets.[i].copy_(signals.[i].sum(0L)) |> ignore
// The same sums as multiplies by a ones row (what an augmented activation column would compute inside the multiply).
let ones = torch.ones([| 1L; m |])
let biasByMultiply () =
    use _ = torch.NewDisposeScope()
    for i in 0 .. 3 do targets.[i].view(1L, -1L).addmm_(ones, signals.[i], 0.0f, 1.0f) |> ignore
// The step's five large multiplies at M = 100, float32 and bfloat16 operands.
let multiplies dtype =
    let x, h1, h2, dl, da1 = r [| m; 784L |], r [| m; 500L |], r [| m; 500L |], r [| m; 784L |], r [| m; 500L |]
    let w1, w5 = r [| 500L; 784L |], r [| 784L; 500L |]
    let c (t: Tensor) = t.to_type(dtype)
    let x, h1, h2, dl, da1, w1, w5 = c x, c h1, c h2, c dl, c da1, c w1, c w5
    fun () ->
        use _ = torch.NewDisposeScope()
        torch.mm(x, w1.t()) |> ignore
        torch.mm(h2, w5.t()) |> ignore
        torch.mm(dl.t(), h2) |> ignore
        torch.mm(dl, w5) |> ignore
        torch.mm(da1.t(), x) |> ignore
for threads in [ 1; 2 ] do
    Torch.setThreads threads
    printfn "%d thread(s): four bias sums %.4f ms, as ones-row multiplies %.4f ms; five large multiplies float32 %.3f ms, bfloat16 %.3f ms"
        threads (time 2000 biasSums) (time 2000 biasByMultiply) (time 200 (multiplies torch.float32)) (time 200 (multiplies torch.bfloat16))
