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

/// Adagrad's state (an OptimizerState without first moments), under its earlier name.
[<System.Obsolete("Use OptimizerState; this name goes in the next version.")>]
type AdagradState = OptimizerState

[<RequireQualifiedAccess>]
module Adagrad =

    /// The paper's settings with the given global step size (chosen from {0.01, 0.02, 0.1}).
    let paper (stepSize: float) = { StepSize = stepSize; WarmUp = 100; Regulariser = 1e-8 }

    /// Zero accumulators shaped like the parameters.
    let init (parameters: Tensor[]) : OptimizerState = OptimizerState.zeros parameters

    /// ascend with settings of its own for each tensor (settings.[i] for parameters.[i]): where a parameter is trained
    /// in rescaled coordinates (WakeSleepVariant), its step size and regulariser differ from the others'.
    let ascendEach (settings: AdagradConfig[]) (s: OptimizerState) (parameters: Tensor[]) (gradients: Tensor[]) : OptimizerState =
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
    let ascend (c: AdagradConfig) (s: OptimizerState) (parameters: Tensor[]) (gradients: Tensor[]) : OptimizerState =
        ascendEach (Array.create parameters.Length c) s parameters gradients

    /// The one-pass update (see ascendOnePass) of elements [0, n): 512-bit vectors where the machine has them (twice
    /// as fast as .NET's preferred 256-bit Vector<T> here), else Vector<T>, then one element at a time for the rest.
    /// With prior <> 0 each gradient element first takes the weight prior's term, g + prior theta (one fused
    /// multiply-add), so that the prior costs no pass of its own (ascendOnePassWithPrior).
    let private ascendElements (update: bool) (p: nativeptr<float32>) (g: nativeptr<float32>) (sums: nativeptr<float32>)
                               (n: int) (stepSize: float32) (regulariser: float32) (prior: float32) =
        let mutable i = 0
        let withPrior = prior <> 0.0f
        // Each element: G <- G + g g as one fused multiply-add (as libtorch's vectorised addcmul_), then
        // theta <- theta + (eta g) / sqrt(G + regulariser) (addcdiv_'s order).
        if Vector512.IsHardwareAccelerated then
            let eta, eps, lambda = Vector512.Create stepSize, Vector512.Create regulariser, Vector512.Create prior
            while i + Vector512<float32>.Count <= n do
                let theta = Vector512.Load(NativePtr.add p i)
                let gv = if withPrior then Vector512.FusedMultiplyAdd(theta, lambda, Vector512.Load(NativePtr.add g i)) else Vector512.Load(NativePtr.add g i)
                let sv = Vector512.FusedMultiplyAdd(gv, gv, Vector512.Load(NativePtr.add sums i))
                sv.Store(NativePtr.add sums i)
                if update then (theta + (eta * gv) / Vector512.Sqrt(sv + eps)).Store(NativePtr.add p i)
                i <- i + Vector512<float32>.Count
        elif Numerics.Vector.IsHardwareAccelerated then
            let eta, eps, lambda = Numerics.Vector<float32>(stepSize), Numerics.Vector<float32>(regulariser), Numerics.Vector<float32>(prior)
            while i + Numerics.Vector<float32>.Count <= n do
                let theta = Numerics.Vector.Load(NativePtr.add p i)
                let gv = if withPrior then Numerics.Vector.FusedMultiplyAdd(theta, lambda, Numerics.Vector.Load(NativePtr.add g i)) else Numerics.Vector.Load(NativePtr.add g i)
                let sv = Numerics.Vector.FusedMultiplyAdd(gv, gv, Numerics.Vector.Load(NativePtr.add sums i))
                Numerics.Vector.Store(sv, NativePtr.add sums i)
                if update then Numerics.Vector.Store(theta + (eta * gv) / Numerics.Vector.SquareRoot(sv + eps), NativePtr.add p i)
                i <- i + Numerics.Vector<float32>.Count
        while i < n do
            let theta = NativePtr.get p i
            let gi = if withPrior then MathF.FusedMultiplyAdd(theta, prior, NativePtr.get g i) else NativePtr.get g i
            let si = MathF.FusedMultiplyAdd(gi, gi, NativePtr.get sums i)
            NativePtr.set sums i si
            if update then NativePtr.set p i (theta + (stepSize * gi) / MathF.Sqrt(si + regulariser))
            i <- i + 1

    /// ascendElements over [offset, offset + n) of the three vectors, in blocks of 2^16 elements over libtorch's
    /// threads (Kernels.forBlocks): each element's update depends on that element alone, so the split does not change
    /// the result.
    let private ascendRange (update: bool) (p: nativeint) (g: nativeint) (sums: nativeint) (offset: int) (n: int)
                            (stepSize: float32) (regulariser: float32) (prior: float32) =
        let at (a: nativeint) (i: int) = NativePtr.add (NativePtr.ofNativeInt<float32> a) (offset + i)
        Kernels.forBlocks n (1 <<< 16) (fun first count ->
            ascendElements update (at p first) (at g first) (at sums first) count stepSize regulariser prior)

    let private address (name: string) (t: Tensor) : nativeptr<float32> =
        Kernels.address<float32> "the one-pass Adagrad update" name torch.float32 t

    /// Adagrad.ascend over one flat float32 parameter tensor in a single pass, with the weight prior's gradient
    /// priorScale theta added to the gradient of elements [0, priorElements) in the same pass (the prior's weights lead
    /// the parameter vector: VaeModel.layout): each element's gradient, then its accumulator, then the element, read and
    /// written once. The gradient tensor is read, not changed. Over libtorch's threads in blocks (see ascendRange).
    let ascendOnePassWithPrior (c: AdagradConfig) (s: OptimizerState) (parameters: Tensor) (gradient: Tensor) (priorScale: float) (priorElements: int64) : OptimizerState =
        if s.SumSquares.Length <> 1 then invalidArg "s" "the one-pass Adagrad update keeps one flat accumulator"
        let sums = s.SumSquares.[0]
        let n = parameters.numel()
        if gradient.numel() <> n || sums.numel() <> n then
            invalidArg "gradient" (sprintf "parameters, gradient and accumulator differ in size: %d, %d and %d" n (gradient.numel()) (sums.numel()))
        if n > int64 Int32.MaxValue then invalidArg "parameters" "the one-pass Adagrad update takes at most 2^31 - 1 elements"
        let p, g, acc = address "parameters" parameters, address "gradient" gradient, address "accumulator" sums
        let p, g, acc = NativePtr.toNativeInt p, NativePtr.toNativeInt g, NativePtr.toNativeInt acc
        let update = s.Steps > int64 c.WarmUp
        let stepSize, regulariser = float32 c.StepSize, float32 c.Regulariser
        // The prior's run of the vector first, then the rest without it.
        let priored = if priorScale = 0.0 then 0 else int (max 0L (min n priorElements))
        if priored > 0 then ascendRange update p g acc 0 priored stepSize regulariser (float32 priorScale)
        ascendRange update p g acc priored (int n - priored) stepSize regulariser 0.0f
        { s with Steps = s.Steps + 1L }

    /// Adagrad.ascend over one flat float32 parameter tensor in a single pass: each element's accumulator, then the
    /// element, read and written once, where ascend makes four passes through libtorch (addcmul_, the regulariser's
    /// add, sqrt_ and addcdiv_). The arithmetic is ascend's, in the same order; the square root is correctly rounded
    /// here, where libtorch's vectorised sqrt_ can be one unit in the last place away, so parameters may differ from
    /// ascend's by rounding. Over libtorch's threads in blocks of elements (see ascendRange; the result does not depend
    /// on their number).
    let ascendOnePass (c: AdagradConfig) (s: OptimizerState) (parameters: Tensor) (gradient: Tensor) : OptimizerState =
        ascendOnePassWithPrior c s parameters gradient 0.0 0L
