namespace Vae.Core

open System.Runtime.InteropServices
open TorchSharp

/// A TorchSharp tensor.
type Tensor = torch.Tensor

/// A thin functional layer over TorchSharp: threads, scopes, dtypes.
[<RequireQualifiedAccess>]
module Torch =

    // A host that does not list libtorch among its dependencies (dotnet fsi, a notebook) does not find libtorch's
    // natives: load them by path (their RUNPATH $ORIGIN finds the rest), then let TorchSharp initialise, which finds
    // them loaded. A build puts them in runtimes/<rid>/native beside TorchSharp.dll, libLibTorchSharp.so patched by
    // the load fix; a script's #r "nuget: ..." leaves them in NuGet's package folders, where libtorch comes from its
    // libtorch-cpu-<rid> package and libLibTorchSharp.so from the patched copy in Vae.Core's package.
    let private natives () =
        let rid = if RuntimeInformation.ProcessArchitecture = Architecture.Arm64 then "linux-arm64" else "linux-x64"
        let torchSharp = System.IO.Path.GetDirectoryName(typeof<torch.Tensor>.Assembly.Location)
        let beside = System.IO.Path.Combine(torchSharp, "runtimes", rid, "native")
        if System.IO.File.Exists(System.IO.Path.Combine(beside, "libLibTorchSharp.so")) then
            [ System.IO.Path.Combine(beside, "libtorch_cpu.so"); System.IO.Path.Combine(beside, "libLibTorchSharp.so") ]
        else
            // NuGet's layout: <packages>/torchsharp/<version>/lib/<tfm>/TorchSharp.dll, <packages>/vae.core/<version>/lib/<tfm>/Vae.Core.dll.
            let up (dir: string) n = Seq.fold (fun d _ -> System.IO.Path.GetDirectoryName(d: string)) dir [ 1 .. n ]
            let packages = up torchSharp 4
            let libtorch =
                let root = System.IO.Path.Combine(packages, "libtorch-cpu-" + rid)
                if not (System.IO.Directory.Exists root) then []
                else
                    System.IO.Directory.GetDirectories root
                    |> Array.map (fun v -> System.IO.Path.Combine(v, "runtimes", rid, "native"))
                    |> Array.filter (fun d -> System.IO.File.Exists(System.IO.Path.Combine(d, "libtorch.so")))
                    |> Array.sortDescending |> Array.tryHead
                    |> Option.map (fun d -> [ System.IO.Path.Combine(d, "libtorch_cpu.so"); System.IO.Path.Combine(d, "libtorch.so") ])
                    |> Option.defaultValue []
            let core = System.IO.Path.GetDirectoryName(System.Reflection.Assembly.GetExecutingAssembly().Location)
            let shipped = System.IO.Path.Combine(up core 2, "natives", rid, "libLibTorchSharp.so")
            libtorch @ [ shipped ]

    let private initialised =
        lazy (
            if RuntimeInformation.IsOSPlatform OSPlatform.Linux && not (System.String.IsNullOrEmpty(typeof<torch.Tensor>.Assembly.Location)) then
                for path in natives () do
                    if System.IO.File.Exists path then NativeLibrary.Load path |> ignore
            torch.InitializeDeviceType DeviceType.CPU)

    /// Loads libtorch's natives from beside TorchSharp.dll if they are not loaded yet; the library's entry points
    /// (threads, generators, MKL's set-up) call it, so an F# script needs no library path.
    let ensureLoaded () = initialised.Force()

    /// Sets the number of threads libtorch uses for intra-op parallelism.
    /// On a 2-core machine, 2 busy libtorch threads beside other work collapse throughput: say how many you use.
    let setThreads (n: int) =
        if n < 1 then invalidArg (nameof n) (sprintf "threads must be at least 1, got %d" n)
        ensureLoaded ()
        torch.set_num_threads n

    /// A TorchSharp scalar from a float. A Scalar holds native memory that dispose scopes do not track: dispose it
    /// (`use`), or take a constant or filled below. Left to the finalizer, such small blocks stay interleaved with a
    /// step's large freed tensors, and the heap can neither reuse nor return that memory.
    let scalar (x: float) : Scalar = Scalar.op_Implicit x

    let private constants = System.Collections.Concurrent.ConcurrentDictionary<float, Scalar>()

    /// The Scalar of a value fixed for the process (1.0, 0.5, a run's step size or batch size), made once and kept.
    let constant (x: float) : Scalar = constants.GetOrAdd(x, fun v -> ensureLoaded (); Scalar.op_Implicit v)

    /// The cached 1, to give an addition its alpha: a.add(b, Torch.one) is a + b. TorchSharp 0.107's a + b (and every
    /// operator with a number) makes a Scalar for the call that nothing keeps alive, so a collection on another thread
    /// can free it while libtorch reads it ("Expected false to be true" from Scalar::toFloat). Numbers go through
    /// constant, or scalar under `use`.
    let one : Scalar = constant 1.0

    /// The cached exponent 2: t.pow(Torch.two) is TorchSharp's t.square(), which makes its exponent a temporary Scalar
    /// (see one).
    let two : Scalar = (ensureLoaded (); Scalar.op_Implicit 2)

    /// t + x for a number x that may vary, its Scalar alive through the call and then freed.
    let plusNumber (t: Tensor) (x: float) : Tensor =
        use s = scalar x
        t.add(s, one)

    /// t * x for a number x that may vary, its Scalar alive through the call and then freed.
    let timesNumber (t: Tensor) (x: float) : Tensor =
        use s = scalar x
        t.mul(s)

    /// t / x for a number x that may vary, its Scalar alive through the call and then freed.
    let overNumber (t: Tensor) (x: float) : Tensor =
        use s = scalar x
        t.div(s)

    /// A tensor of the given shape and dtype filled with value (its Scalar disposed at once).
    let filled (shape: int64[]) (value: float) (dtype: torch.ScalarType) : Tensor =
        use s = scalar value
        torch.full(shape, s, dtype = dtype)

    /// libtorch computes exp, log, sqrt, tanh and twelve more functions of contiguous float tensors with MKL's vector
    /// functions, each of which chooses its kernel at its own first call. Two intra-op threads making that first call
    /// at once can give one of them a low-accuracy kernel for that call (the oneMKL 2024.2 that libtorch 2.10 links;
    /// PERFORMANCE.md, "Deterministic"). This makes each first call, float32 and float64, on one element.
    let private vectorFunctions =
        lazy (
            ensureLoaded ()
            use _ = torch.NewDisposeScope()
            use _ = torch.no_grad ()
            for dtype in [ torch.float32; torch.float64 ] do
                let x = filled [| 1L |] 0.5 dtype
                for f in [ (fun (t: Tensor) -> t.acos()); (fun t -> t.asin()); (fun t -> t.atan()); (fun t -> t.cos()); (fun t -> t.erf())
                           (fun t -> t.erfinv()); (fun t -> t.erfc()); (fun t -> t.exp()); (fun t -> t.log()); (fun t -> t.log10())
                           (fun t -> t.log2()); (fun t -> t.sin()); (fun t -> t.sqrt()); (fun t -> t.tan()); (fun t -> t.tanh())
                           (fun t -> t.trunc()) ] do
                    f x |> ignore)

    /// Makes MKL's vector functions choose their kernels now, once per process, on one thread (see vectorFunctions).
    /// VaeModel.encode and decodeMean (which every evaluation passes through first) and TrainingRun.fit call it, after
    /// NativeTuning, which must precede MKL's first calls.
    let resolveVectorFunctions () = vectorFunctions.Force()

    /// The number of threads libtorch currently uses.
    let threads () = torch.get_num_threads ()

    /// Forces libtorch to load now (its natives load lazily on first use) and returns its version.
    let load () : string =
        ensureLoaded ()
        torch.__version__

    /// A full garbage collection with its finalizers run. TorchSharp 0.107's tensor operators allocate native Scalars
    /// that dispose scopes do not track and leave to the finalizer: the alpha = 1 of every addition, and the operand of
    /// every operation with a float. Loops that allocate little managed memory (HMC's leapfrog
    /// gradients) seldom trigger a collection, and those small blocks, interleaved with the step's large freed tensors,
    /// keep the heap from reusing that memory. Call it after every hundred milliseconds or so of such work.
    let releaseFinalizedMemory () =
        System.GC.Collect()
        System.GC.WaitForPendingFinalizers()

    /// Runs f with gradient recording off.
    let noGrad (f: unit -> 'T) : 'T =
        use _ = torch.no_grad ()
        f ()

    /// A float32 tensor of shape [rows; cols] from row-major data (copied).
    let ofArray2 (rows: int) (cols: int) (data: float32[]) : Tensor =
        if data.Length <> rows * cols then
            invalidArg (nameof data) (sprintf "expected %d x %d = %d values, got %d" rows cols (rows * cols) data.Length)
        torch.tensor (data, System.ReadOnlySpan<int64>([| int64 rows; int64 cols |]))

    /// The value of f (a scalar tensor) and its gradients with respect to xs, by reverse-mode autodiff.
    /// The xs must require gradients.
    let valueAndGrad (f: unit -> Tensor) (xs: Tensor[]) : Tensor * Tensor[] =
        let y = f ()
        let gs = torch.autograd.grad ([| y |], xs)
        y, Seq.toArray gs

    /// A generator seeded for reproducible sampling on the CPU.
    let generator (seed: int64) : torch.Generator =
        ensureLoaded ()
        new torch.Generator(uint64 seed, torch.CPU)

    /// Central finite differences of a scalar function with respect to every element of x (float64
    /// recommended): (f(x + h e_i) - f(x - h e_i)) / 2h. Used to check autodiff gradients.
    let finiteDifferences (f: unit -> float) (x: Tensor) (h: float) : float[] =
        use _ = torch.no_grad ()
        let flat = x.view(-1L)
        Array.init (int flat.shape.[0]) (fun i ->
            let i = int64 i
            let original = flat.[i].ToDouble()
            flat.[i] <- torch.tensor (original + h, dtype = x.dtype)
            let up = f ()
            flat.[i] <- torch.tensor (original - h, dtype = x.dtype)
            let down = f ()
            flat.[i] <- torch.tensor (original, dtype = x.dtype)
            (up - down) / (2.0 * h))
