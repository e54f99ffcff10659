namespace Vae

open System
open System.IO
open System.Runtime.InteropServices

// The core's exceptions, in the Vae namespace for every caller (C# through the façade, F# through the core); the
// data and checkpoint exceptions are in Vae.Data's Errors.fs.

/// Training stopped because the bound or a gradient was not finite; the parameters are those before the step.
type NonFiniteBoundException(step: int64, value: float) =
    inherit ArithmeticException(
        sprintf "training stopped at step %d: the lower bound or its gradient is not finite (bound %g); the parameters of the last good step are kept" step value)
    /// The 0-based step whose estimate was not finite.
    member _.Step = step
    /// The bound's value at that step.
    member _.Value = value
