// Kernels.tanhLayerDots against copies of it: the same, with a reciprocal estimate (AVX-512) in tanh's division, and
// without tanh, on 5,100 rows (one chunk); then the reciprocal variant's largest relative error.
//   dotnet fsi --optimize+ docs/experiments/iwae-tanh-variants.fsx
#r "../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
#nowarn "9"
#nowarn "51"
open System
open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86
open Microsoft.FSharp.NativeInterop
open TorchSharp
open Vae.Core
NativeTuning.retainFreedMemory () |> ignore
Torch.setThreads 2
let addr (t: Tensor) : nativeint =
    let bytes = t.bytes
    NativePtr.toNativeInt &&(System.Runtime.InteropServices.MemoryMarshal.GetReference bytes)
let inline recip (d: Vector512<float32>) =
    let r = Avx512F.Reciprocal14(d)
    r * (Vector512.Create 2.0f - d * r)
let inline tanhV (mode: int) (a: Vector512<float32>) =
    if mode = 3 then a else
    let one = Vector512.Create 1.0f
    let x = Vector512.Abs a
    let s = a * a
    let mutable p = Vector512.Create(6404582.0f / 10854718875.0f)
    p <- Vector512.FusedMultiplyAdd(p, s, Vector512.Create(-929569.0f / 638512875.0f))
    p <- Vector512.FusedMultiplyAdd(p, s, Vector512.Create(21844.0f / 6081075.0f))
    p <- Vector512.FusedMultiplyAdd(p, s, Vector512.Create(-1382.0f / 155925.0f))
    p <- Vector512.FusedMultiplyAdd(p, s, Vector512.Create(62.0f / 2835.0f))
    p <- Vector512.FusedMultiplyAdd(p, s, Vector512.Create(-17.0f / 315.0f))
    p <- Vector512.FusedMultiplyAdd(p, s, Vector512.Create(2.0f / 15.0f))
    p <- Vector512.FusedMultiplyAdd(p, s, Vector512.Create(-1.0f / 3.0f))
    let series = Vector512.FusedMultiplyAdd(x * s, p, x)
    let den = Vector512.Exp(Vector512.Min(x + x, Vector512.Create 40.0f)) + one
    let far = if mode = 2 then one - Vector512.Create 2.0f * recip den else one - Vector512.Create 2.0f / den
    let t = Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create 0.5f), series, far)
    let signed = Vector512.ConditionalSelect(Vector512.LessThan(a, Vector512<float32>.Zero), -t, t)
    Vector512.ConditionalSelect(Vector512.Equals(a, a), signed, a)
let kernel (mode: int) (z: Tensor) (wT: Tensor) (bias: Tensor) (y: Tensor) (h: Tensor) (dots: Tensor) =
    let rows, j, cols, m = int z.shape.[0], int z.shape.[1], int wT.shape.[1], int y.shape.[0]
    let zp, wp, bp, yp, hp, dp = addr z, addr wT, addr bias, addr y, addr h, addr dots
    let body r =
        let zr = NativePtr.add (NativePtr.ofNativeInt<float32> zp) (r * j)
        let w, b = NativePtr.ofNativeInt<float32> wp, NativePtr.ofNativeInt<float32> bp
        let hr = NativePtr.add (NativePtr.ofNativeInt<float32> hp) (r * cols)
        let yr = NativePtr.add (NativePtr.ofNativeInt<float32> yp) ((r % m) * cols)
        let mutable c = 0
        let mutable acc = Vector512<float32>.Zero
        while c + 16 <= cols do
            let mutable a = Vector512.Load(NativePtr.add b c)
            for k in 0 .. j - 1 do
                a <- Vector512.FusedMultiplyAdd(Vector512.Create(NativePtr.get zr k), Vector512.Load(NativePtr.add w (k * cols + c)), a)
            let t = tanhV mode a
            t.Store(NativePtr.add hr c)
            acc <- Vector512.FusedMultiplyAdd(t, Vector512.Load(NativePtr.add yr c), acc)
            c <- c + 16
        let mutable s = Vector512.Sum acc
        while c < cols do
            let mutable a = NativePtr.get b c
            for k in 0 .. j - 1 do a <- MathF.FusedMultiplyAdd(NativePtr.get zr k, NativePtr.get w (k * cols + c), a)
            let t = MathF.Tanh a
            NativePtr.set hr c t
            s <- s + t * NativePtr.get yr c
            c <- c + 1
        NativePtr.set (NativePtr.ofNativeInt<float32> dp) r s
    let blocks = (rows + 63) / 64
    Threading.Tasks.Parallel.For(0, blocks, Threading.Tasks.ParallelOptions(MaxDegreeOfParallelism = 2), fun bl ->
        for r in bl * 64 .. min rows ((bl + 1) * 64) - 1 do body r) |> ignore
let g = Torch.generator 1L
let z = torch.randn([| 5100L; 20L |], generator = g)
let wT = torch.randn([| 20L; 500L |], generator = g) * 0.3
let bias = torch.randn([| 500L |], generator = g) * 0.1
let y = torch.randn([| 100L; 500L |], generator = g)
let h, dots = torch.empty([| 5100L; 500L |]), torch.empty([| 5100L |])
let time f =
    for _ in 1 .. 40 do f ()
    let sw = Diagnostics.Stopwatch.StartNew()
    for _ in 1 .. 40 do f ()
    sw.Elapsed.TotalMilliseconds / 40.0
for _ in 1 .. 3 do
    let l = time (fun () -> Kernels.tanhLayerDots z wT bias y h dots)
    let v1 = time (fun () -> kernel 1 z wT bias y h dots)
    let v2 = time (fun () -> kernel 2 z wT bias y h dots)
    let v3 = time (fun () -> kernel 3 z wT bias y h dots)
    printfn "library %.2f ms; copy %.2f; reciprocal estimate %.2f; no tanh %.2f" l v1 v2 v3
let exact = (z.to_type(torch.float64).mm(wT.to_type(torch.float64)) + bias.to_type(torch.float64)).tanh()
kernel 2 z wT bias y h dots
printfn "reciprocal variant max rel err %g" (((h.to_type(torch.float64) - exact).abs() / exact.abs().clamp_min(Torch.scalar 1e-30)).max().ToDouble())
