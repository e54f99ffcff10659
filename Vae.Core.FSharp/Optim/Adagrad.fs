namespace Vae.Core

// Native pointers (warning 9): the one-pass update reads and writes the tensors' memory directly.
#nowarn "9"

open System
open System.Runtime.Intrinsics
open Microsoft.FSharp.NativeInterop
open TorchSharp

/// Adagrad as the paper's code uses it (section 5): a global step size eta; squared gradients
/// accumulate from the first minibatch, and updates start after WarmUp + 1 minibatches;
/// theta <- theta + eta g / sqrt(G + Regulariser) (gradient ascent).
type AdagradConfig =
    { StepSize: float
      /// Minibatches whose squared gradients are accumulated before the first update (the paper: 100).
      WarmUp: int
      /// Added to the accumulated squares under the root (the paper: 1e-8).
      Regulariser: float }

/// Adagrad's state: the accumulated squared gradients and the steps taken. SumSquares has one accumulator per tensor
/// that ascend updates: one per parameter tensor, or one for a model's whole parameter vector (the fused steps).
type AdagradState = { SumSquares: Tensor[]; Steps: int64 }

[<RequireQualifiedAccess>]
module Adagrad =

    /// The paper's settings with the given global step size (chosen from {0.01, 0.02, 0.1}).
    let paper (stepSize: float) = { StepSize = stepSize; WarmUp = 100; Regulariser = 1e-8 }

    /// Zero accumulators shaped like the parameters.
    let init (parameters: Tensor[]) : AdagradState =
        { SumSquares = parameters |> Array.map (fun p -> torch.zeros_like(p)); Steps = 0L }

    /// ascend with settings of its own for each tensor (settings.[i] for parameters.[i]): where a parameter is trained
    /// in rescaled coordinates (WakeSleepVariant), its step size and regulariser differ from the others'.
    let ascendEach (settings: AdagradConfig[]) (s: AdagradState) (parameters: Tensor[]) (gradients: Tensor[]) : AdagradState =
        use _ = torch.no_grad ()
        if parameters.Length <> s.SumSquares.Length || gradients.Length <> parameters.Length || settings.Length <> parameters.Length then
            invalidArg "s" (sprintf "%d parameter tensors, %d gradients, %d accumulators and %d settings; expected one of each per tensor"
                                parameters.Length gradients.Length s.SumSquares.Length settings.Length)
        for i in 0 .. parameters.Length - 1 do
            let c, g = settings.[i], gradients.[i]
            s.SumSquares.[i].addcmul_(g, g, Torch.constant 1.0) |> ignore
            if s.Steps > int64 c.WarmUp then
                use denom = s.SumSquares.[i].add(Torch.constant c.Regulariser, Torch.one).sqrt_()
                parameters.[i].addcdiv_(g, denom, Torch.constant c.StepSize) |> ignore
        { s with Steps = s.Steps + 1L }

    /// One ascent step, in place on the parameters and accumulators. As in the paper's code
    /// (`if nsteps > warmup`), the first update is made at 0-based step WarmUp + 1.
    let ascend (c: AdagradConfig) (s: AdagradState) (parameters: Tensor[]) (gradients: Tensor[]) : AdagradState =
        ascendEach (Array.create parameters.Length c) s parameters gradients

    /// The one-pass update (see ascendOnePass) of elements [0, n): 512-bit vectors where the machine has them (twice
    /// as fast as .NET's preferred 256-bit Vector<T> here), else Vector<T>, then one element at a time for the rest.
    let private ascendElements (update: bool) (p: nativeptr<float32>) (g: nativeptr<float32>) (sums: nativeptr<float32>)
                               (n: int) (stepSize: float32) (regulariser: float32) =
        let mutable i = 0
        // Each element: G <- G + g g as one fused multiply-add (as libtorch's vectorised addcmul_), then
        // theta <- theta + (eta g) / sqrt(G + regulariser) (addcdiv_'s order).
        if Vector512.IsHardwareAccelerated then
            let eta, eps = Vector512.Create stepSize, Vector512.Create regulariser
            while i + Vector512<float32>.Count <= n do
                let gv = Vector512.Load(NativePtr.add g i)
                let sv = Vector512.FusedMultiplyAdd(gv, gv, Vector512.Load(NativePtr.add sums i))
                sv.Store(NativePtr.add sums i)
                if update then (Vector512.Load(NativePtr.add p i) + (eta * gv) / Vector512.Sqrt(sv + eps)).Store(NativePtr.add p i)
                i <- i + Vector512<float32>.Count
        elif Numerics.Vector.IsHardwareAccelerated then
            let eta, eps = Numerics.Vector<float32>(stepSize), Numerics.Vector<float32>(regulariser)
            while i + Numerics.Vector<float32>.Count <= n do
                let gv = Numerics.Vector.Load(NativePtr.add g i)
                let sv = Numerics.Vector.FusedMultiplyAdd(gv, gv, Numerics.Vector.Load(NativePtr.add sums i))
                Numerics.Vector.Store(sv, NativePtr.add sums i)
                if update then
                    Numerics.Vector.Store(Numerics.Vector.Load(NativePtr.add p i) + (eta * gv) / Numerics.Vector.SquareRoot(sv + eps), NativePtr.add p i)
                i <- i + Numerics.Vector<float32>.Count
        while i < n do
            let gi = NativePtr.get g i
            let si = MathF.FusedMultiplyAdd(gi, gi, NativePtr.get sums i)
            NativePtr.set sums i si
            if update then NativePtr.set p i (NativePtr.get p i + (stepSize * gi) / MathF.Sqrt(si + regulariser))
            i <- i + 1

    let private address (name: string) (t: Tensor) : nativeptr<float32> =
        Kernels.address<float32> "the one-pass Adagrad update" name torch.float32 t

    /// Adagrad.ascend over one flat float32 parameter tensor in a single pass: each element's accumulator, then the
    /// element, read and written once, where ascend makes four passes through libtorch (addcmul_, the regulariser's
    /// add, sqrt_ and addcdiv_). The arithmetic is ascend's, in the same order; the square root is correctly rounded
    /// here, where libtorch's vectorised sqrt_ can be one unit in the last place away, so parameters may differ from
    /// ascend's by rounding. It runs on the calling thread; splitting it between two workers was slower.
    let ascendOnePass (c: AdagradConfig) (s: AdagradState) (parameters: Tensor) (gradient: Tensor) : AdagradState =
        if s.SumSquares.Length <> 1 then invalidArg "s" "the one-pass Adagrad update keeps one flat accumulator"
        let sums = s.SumSquares.[0]
        let n = parameters.numel()
        if gradient.numel() <> n || sums.numel() <> n then
            invalidArg "gradient" (sprintf "parameters, gradient and accumulator differ in size: %d, %d and %d" n (gradient.numel()) (sums.numel()))
        if n > int64 Int32.MaxValue then invalidArg "parameters" "the one-pass Adagrad update takes at most 2^31 - 1 elements"
        let p, g, acc = address "parameters" parameters, address "gradient" gradient, address "accumulator" sums
        ascendElements (s.Steps > int64 c.WarmUp) p g acc (int n) (float32 c.StepSize) (float32 c.Regulariser)
        { s with Steps = s.Steps + 1L }
