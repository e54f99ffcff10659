// The cost of the bfloat16 step's small calls on their own: the cast of the flat parameter buffer (to_type, or copy_ into
// a preallocated bfloat16 buffer), casts of a 100 x 784 tensor, a sigmoid, a subtraction and an empty call; median of 7 rounds.
//   dotnet fsi docs/experiments/casts.fsx
#r "../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
open TorchSharp
open Vae.Core
NativeTuning.retainFreedMemory () |> ignore
let g = Torch.generator 1L
let p = torch.randn([| 814_060L |], generator = g)
let low = torch.empty([| 814_060L |], dtype = torch.bfloat16)
let a = torch.randn([| 100L; 784L |], generator = g)
let ab = a.to_type(torch.bfloat16)
let median (xs: float[]) = (Array.sort xs).[xs.Length / 2]
let time reps (f: unit -> unit) =
    for _ in 1 .. 100 do f ()
    median [| for _ in 1 .. 7 ->
                let sw = System.Diagnostics.Stopwatch.StartNew()
                for _ in 1 .. reps do f ()
                sw.Elapsed.TotalMilliseconds / float reps |]
let scoped f () = (use _ = torch.NewDisposeScope() in f () |> ignore)
for t in [ 1; 2 ] do
    Torch.setThreads t
    printfn "%d threads: flat to_type %.4f ms; copy_ into bf16 buffer %.4f ms; [100x784] to bf16 %.4f, to f32 %.4f; sigmoid %.4f; sub %.4f; empty op (zeros 1) %.4f"
        t (time 1000 (scoped (fun () -> p.to_type(torch.bfloat16)))) (time 1000 (scoped (fun () -> low.copy_(p))))
        (time 5000 (scoped (fun () -> a.to_type(torch.bfloat16)))) (time 5000 (scoped (fun () -> ab.to_type(torch.float32))))
        (time 5000 (scoped (fun () -> a.sigmoid()))) (time 5000 (scoped (fun () -> torch.sub(a, a))))
        (time 5000 (scoped (fun () -> torch.zeros(1L))))
