namespace Vae.Core

open TorchSharp

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

    /// The number of threads libtorch currently uses.
    let threads () = torch.get_num_threads ()

    /// Forces libtorch to load now (its natives load lazily on first use) and returns its version.
    let load () : string =
        torch.InitializeDeviceType DeviceType.CPU
        torch.__version__

    /// Runs f inside a dispose scope: every tensor created inside and not returned is freed on exit.
    let inScope (f: unit -> 'T) : 'T =
        use _ = torch.NewDisposeScope ()
        f ()

    /// Runs f with gradient recording off.
    let noGrad (f: unit -> 'T) : 'T =
        use _ = torch.no_grad ()
        f ()

    /// A float32 tensor of shape [rows; cols] from row-major data (copied).
    let ofArray2 (rows: int) (cols: int) (data: float32[]) : Tensor =
        if data.Length <> rows * cols then
            invalidArg (nameof data) (sprintf "expected %d x %d = %d values, got %d" rows cols (rows * cols) data.Length)
        torch.tensor (data, System.ReadOnlySpan<int64>([| int64 rows; int64 cols |]))
