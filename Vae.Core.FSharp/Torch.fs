namespace Vae.Core

open System.Runtime.InteropServices
open TorchSharp

/// glibc's malloc settings (Linux only).
module internal GlibcMalloc =
    [<DllImport("libc.so.6", EntryPoint = "mallopt")>]
    extern int mallopt(int param, int value)
    /// mallopt's parameter numbers (malloc.h).
    let [<Literal>] TrimThreshold = -1
    let [<Literal>] MmapThreshold = -3

/// A TorchSharp tensor.
type Tensor = torch.Tensor

/// A thin functional layer over TorchSharp: threads, scopes, dtypes.
[<RequireQualifiedAccess>]
module Torch =

    /// Sets the number of threads libtorch uses for intra-op parallelism.
    /// On a 2-core machine, 2 busy libtorch threads beside other work collapse throughput: say how many you use.
    let setThreads (n: int) =
        if n < 1 then invalidArg (nameof n) (sprintf "threads must be at least 1, got %d" n)
        torch.set_num_threads n

    /// A TorchSharp scalar from a float.
    let scalar (x: float) : Scalar = Scalar.op_Implicit x

    /// The number of threads libtorch currently uses.
    let threads () = torch.get_num_threads ()

    /// Forces libtorch to load now (its natives load lazily on first use) and returns its version.
    let load () : string =
        torch.InitializeDeviceType DeviceType.CPU
        torch.__version__

    /// Makes glibc's malloc keep freed memory for reuse: the mmap threshold at its maximum (32 MB) and
    /// no trimming. libtorch allocates every intermediate tensor with malloc; a training step's
    /// tensors of 100-300 KB otherwise can come from mmap and go back to the kernel each step; the
    /// straightforward loop of `vae bench` ran 2-3 times slower that way here. Memory stays flat:
    /// the same blocks are reused step after step. Process-wide; returns false where glibc is absent.
    let retainFreedMemory () : bool =
        if not (RuntimeInformation.IsOSPlatform OSPlatform.Linux) then false
        else
            try
                GlibcMalloc.mallopt (GlibcMalloc.MmapThreshold, 32 * 1024 * 1024) = 1
                && GlibcMalloc.mallopt (GlibcMalloc.TrimThreshold, System.Int32.MaxValue) = 1
            with :? System.DllNotFoundException | :? System.EntryPointNotFoundException -> false

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
    let generator (seed: int64) : torch.Generator = new torch.Generator(uint64 seed, torch.CPU)

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
